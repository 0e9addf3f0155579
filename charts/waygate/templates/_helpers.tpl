{{/*
The image of a component: (list $ .Values.<component>.image). A digest wins
over a tag; the tag defaults to the chart's appVersion.
*/}}
{{- define "waygate.image" -}}
{{- $root := index . 0 -}}
{{- $image := index . 1 -}}
{{- if $image.digest -}}
{{ $image.repository }}@{{ $image.digest }}
{{- else -}}
{{ $image.repository }}:{{ $image.tag | default $root.Chart.AppVersion }}
{{- end -}}
{{- end }}

{{/* The operator's flags that values set. */}}
{{- define "waygate.manager.args" -}}
{{- if .Values.certManager.enabled }}
- --cert-rotation=false
{{- else }}
- --cert-rotation
{{- end }}
{{- with .Values.manager.audit }}
- --audit-max-age={{ .maxAge }}
- --audit-max-entries={{ .maxEntries }}
{{- with .export }}
- --audit-export={{ . }}
{{- end }}
{{- with .suppressors }}
- --audit-suppressors={{ join "," . }}
{{- end }}
{{- end }}
{{- range .Values.manager.extraArgs }}
- {{ . }}
{{- end }}
{{- end }}

{{- define "waygate.manager.env" -}}
{{- end }}

{{/* The gate's flags that values set. */}}
{{- define "waygate.gate.args" -}}
{{- with .Values.gate }}
- --environment={{ .environment }}
{{- if .redis.existingSecret }}
- --redis-url=$(WAYGATE_REDIS_URL)
{{- else if .redis.url }}
- --redis-url={{ .redis.url }}
{{- end }}
{{- with .trustedHops }}
- --trusted-hops={{ . }}
{{- end }}
{{- with .trustedProxies }}
- --trusted-proxies={{ . }}
{{- end }}
{{- with .jwt.jwksURL }}
- --jwt-jwks-url={{ . }}
{{- end }}
{{- with .jwt.issuer }}
- --jwt-issuer={{ . }}
{{- end }}
{{- with .jwt.audience }}
- --jwt-audience={{ . }}
{{- end }}
{{- range .extraArgs }}
- {{ . }}
{{- end }}
{{- end }}
{{- end }}

{{/* The Redis URL from a Secret, so that its password is in no flag. */}}
{{- define "waygate.gate.env" -}}
{{- with .Values.gate.redis }}
{{- if .existingSecret }}
- name: WAYGATE_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: {{ .existingSecretKey }}
{{- end }}
{{- end }}
{{- end }}

{{- define "waygate.dashboard.args" -}}
{{- range .Values.dashboard.extraArgs }}
- {{ . }}
{{- end }}
{{- end }}

{{- define "waygate.dashboard.env" -}}
{{- end }}

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

{{/*
The audit export's collector, as the OpenTelemetry exporter's variables
name it: endpoint, protocol, headers from a Secret, TLS files from a Secret
mounted at /etc/waygate/otlp.
*/}}
{{- define "waygate.manager.env" -}}
{{- with .Values.manager.audit }}
{{- if eq .export "otlp" }}
{{- with .otlp }}
{{- with .endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ .protocol | quote }}
{{- with .headers.secretName }}
- name: OTEL_EXPORTER_OTLP_HEADERS
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.manager.audit.otlp.headers.key }}
{{- end }}
{{- if .tls.secretName }}
- name: OTEL_EXPORTER_OTLP_CERTIFICATE
  value: /etc/waygate/otlp/ca.crt
{{- if .tls.clientCertificate }}
- name: OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE
  value: /etc/waygate/otlp/tls.crt
- name: OTEL_EXPORTER_OTLP_CLIENT_KEY
  value: /etc/waygate/otlp/tls.key
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{- define "waygate.manager.volumes" -}}
{{- with .Values.manager.audit }}
{{- if and (eq .export "otlp") .otlp.tls.secretName }}
- name: otlp-tls
  secret:
    secretName: {{ .otlp.tls.secretName }}
{{- end }}
{{- end }}
{{- end }}

{{- define "waygate.manager.volumeMounts" -}}
{{- with .Values.manager.audit }}
{{- if and (eq .export "otlp") .otlp.tls.secretName }}
- name: otlp-tls
  mountPath: /etc/waygate/otlp
  readOnly: true
{{- end }}
{{- end }}
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

{{- define "waygate.dashboard.volumes" -}}
{{- end }}

{{- define "waygate.dashboard.volumeMounts" -}}
{{- end }}

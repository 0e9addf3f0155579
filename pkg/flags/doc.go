// Package flags is Waygate's feature-flag engine: it compiles the
// FeatureFlags and Segments of a namespace into an immutable Snapshot and
// evaluates flags for an OpenFeature evaluation context, in the order the
// Waygate reference gives (disabled → prerequisites → individual targets →
// first matching rule → fallthrough), with OpenFeature's reasons and error
// codes. The gate serves it over OFREP; Go services use it in-process
// through the OpenFeature provider in pkg/flags/provider.
//
// Everything a rule compares with is parsed when the snapshot is built;
// evaluation takes no lock, and a newer snapshot replaces an older one
// atomically. Rollouts bucket contexts with Bucket, which every
// replica computes alike.
package flags

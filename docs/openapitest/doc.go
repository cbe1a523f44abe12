// Package openapitest holds the tests that keep docs/openapi.yaml true: the
// document lists exactly the routes the server registers, its examples
// validate against its schemas, and the answers of a live server (the
// `wxnotify dev` wiring on the fake WeChat) validate against the schemas of
// their routes. It has no code of its own.
package openapitest

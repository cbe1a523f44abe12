// Package httpapi serves every HTTP route of docs/api.md as ordinary
// http.Handlers: the local server mounts them on one mux, and the Lambda and
// SCF adapters convert their events to *http.Request and back. It maps domain
// errors to one error body, authenticates callers (API keys for servers,
// session tokens for the mini program, WeChat's signatures for pushes),
// limits bodies to 64 KiB and logs one JSON line per request.
package httpapi

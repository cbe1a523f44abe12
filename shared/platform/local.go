package platform

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// ServeLocal serves h.HTTP on o.Addr as a plain HTTP server until ctx
// ends, then shuts down gracefully (in-flight requests get 10 seconds) and
// returns nil. It returns the listen error at once when the address is
// unusable, and an error when h has no HTTP core: queue and schedule cores
// run locally under `wxnotify dev`, not as a function binary.
func ServeLocal(ctx context.Context, h Handlers, o Options) error {
	o = o.withDefaults()
	if h.HTTP == nil {
		return errors.New("runtime: this function has no HTTP handler to serve locally; run it with `wxnotify dev`")
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return err
	}
	return serveListener(ctx, ln, h.HTTP, o)
}

func serveListener(ctx context.Context, ln net.Listener, h http.Handler, o Options) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second}
	o.Logger.Info("listening", "function", o.Function, "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		o.Logger.Info("shutting down", "function", o.Function)
		return srv.Shutdown(shutdown)
	}
}

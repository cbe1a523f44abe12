package boot

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"wxnotify/shared/config"
	"wxnotify/shared/httpapi"
)

// Main is the whole main of an HTTP function: configuration from the
// environment (validated, failing with the field's name), the store, the
// parts, and the function's route groups served until SIGTERM. It exits the
// process with status 1 on a configuration or start-up error.
func Main(function string, groups ...httpapi.Group) {
	if err := run(function, groups); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", function, err)
		os.Exit(1)
	}
}

func run(function string, groups []httpapi.Group) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.FromEnv(os.Getenv, false)
	if err != nil {
		return err
	}
	if err := cfg.Require(); err != nil {
		return err
	}
	log := NewLogger(os.Stderr, cfg.LogLevel)
	st, err := OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	parts, err := Build(cfg, st, Options{Function: function, Logger: log})
	if err != nil {
		_ = st.Close()
		return err
	}
	defer parts.Close()
	addr := Addr(os.Getenv)
	log.Info("listening", "function", function, "addr", addr)
	return Serve(ctx, addr, parts.API.NewMux(groups...), log)
}

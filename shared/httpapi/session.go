package httpapi

import (
	"context"

	"github.com/wxnotify/wxnotify/shared/notify"
)

func contextWithSession(ctx context.Context, s notify.Session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

func sessionFrom(ctx context.Context) notify.Session {
	s, _ := ctx.Value(sessionKey{}).(notify.Session)
	return s
}

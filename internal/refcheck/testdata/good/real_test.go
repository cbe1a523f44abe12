package sample

import "testing"

func TestReal(t *testing.T) {}

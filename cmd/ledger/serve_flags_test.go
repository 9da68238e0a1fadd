package main

import (
	"slices"
	"strings"
	"testing"
)

// TestServeFlagsFromEnv: the CORS and JWT claim flags reach the server's
// config, from the command line or from LEDGER_* variables.
func TestServeFlagsFromEnv(t *testing.T) {
	vars := map[string]string{
		"LEDGER_CORS_ORIGINS":     "https://app.example, http://localhost:5173",
		"LEDGER_CORS_CREDENTIALS": "true",
		"LEDGER_JWT_SECRET":       strings.Repeat("s", 32),
		"LEDGER_JWT_AUDIENCE":     "ledger",
	}
	e := env{getenv: func(k string) string { return vars[k] }}
	fs, f := newServeFlags(e)
	if err := parseFlags(fs, e, []string{"--jwt-issuer", "https://id.example"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.config()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.CORS.Origins, []string{"https://app.example", "http://localhost:5173"}) || !cfg.CORS.Credentials {
		t.Errorf("cors %+v", cfg.CORS)
	}
	if cfg.Auth.JWTAudience != "ledger" || cfg.Auth.JWTIssuer != "https://id.example" {
		t.Errorf("jwt audience %q issuer %q", cfg.Auth.JWTAudience, cfg.Auth.JWTIssuer)
	}
}

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/signingkeys"
)

// keysCommand handles `authgpts keys rotate [--alg RS256|ES256]`: without --alg every
// active key is rotated. Running servers pick the new keys up by NOTIFY; the retired keys
// stay published until every token they signed has expired.
func keysCommand(ctx context.Context, cfg Config, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "rotate" {
		return fmt.Errorf("%w: authgpts keys rotate [--alg RS256|ES256]", errUsage)
	}
	fs := flag.NewFlagSet("keys rotate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	alg := fs.String("alg", "", "algorithm of the key to rotate: RS256 (ID tokens) or ES256 (access tokens); default both")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		return fmt.Errorf("%w: authgpts keys rotate [--alg RS256|ES256]", errUsage)
	}
	algs := []string{oauth.AlgRS256, oauth.AlgES256}
	switch *alg {
	case "":
	case oauth.AlgRS256, oauth.AlgES256:
		algs = []string{*alg}
	default:
		return fmt.Errorf("%w: --alg must be RS256 or ES256", errUsage)
	}
	st, err := openAndMigrate(ctx, cfg, io.Discard)
	if err != nil {
		return err
	}
	defer st.Close()
	keys, err := signingkeys.NewKeys(ctx, st, oauth.DeriveKeys(cfg.Secret).KeyEncryption, time.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	type rotated struct {
		Alg string `json:"alg"`
		KID string `json:"kid"`
	}
	var result []rotated
	for _, a := range algs {
		kid, err := keys.Rotate(ctx, a)
		if err != nil {
			return err
		}
		result = append(result, rotated{Alg: a, KID: kid})
		details, _ := json.Marshal(map[string]string{"alg": a})
		if err := st.Audit(ctx, store.AuditEntry{ActorEmail: "cli", Action: "keys.rotated", TargetType: "signing_key", TargetID: kid,
			Details: details}); err != nil {
			return err
		}
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{"rotated": result})
}

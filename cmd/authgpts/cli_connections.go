package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// connectionsCommand handles `authgpts connections rotate-key`: a new vault key
// generation becomes the newest and every provider client secret, linked-account token
// and queued revocation is re-sealed under it in one transaction. Running servers seal
// new values under the newest generation from the next write on.
func connectionsCommand(ctx context.Context, cfg Config, args []string, out io.Writer) error {
	if len(args) != 1 || args[0] != "rotate-key" {
		return fmt.Errorf("%w: authgpts connections rotate-key", errUsage)
	}
	st, err := openAndMigrate(ctx, cfg, io.Discard)
	if err != nil {
		return err
	}
	defer st.Close()
	vault := oauth.DeriveKeys(cfg.Secret).Vault
	keyID, n, err := st.RotateVaultKey(ctx, func(from, to int, sealed []byte, rowID, field string) ([]byte, error) {
		plain, err := vault.Open(from, sealed, rowID, field)
		if err != nil {
			return nil, err
		}
		defer clear(plain)
		return vault.Seal(to, plain, rowID, field)
	})
	if err != nil {
		return err
	}
	details, _ := json.Marshal(map[string]int{"resealed": n})
	if err := st.Audit(ctx, store.AuditEntry{ActorEmail: "cli", Action: "connections.key_rotated", TargetType: "vault_key",
		TargetID: fmt.Sprint(keyID), Details: details}); err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]int{"key_id": keyID, "resealed": n})
}

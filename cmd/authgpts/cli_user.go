package main

import (
	"context"
	"fmt"
	"io"

	"github.com/authgpts/authgpts/store"
)

// userCommand handles `authgpts user admin EMAIL`.
func userCommand(ctx context.Context, cfg Config, args []string, out io.Writer) error {
	if len(args) != 2 || args[0] != "admin" {
		return fmt.Errorf("%w: authgpts user admin EMAIL", errUsage)
	}
	email, ok := store.NormalizeEmail(args[1])
	if !ok {
		return fmt.Errorf("%q is not an email address", args[1])
	}
	st, err := openAndMigrate(ctx, cfg, io.Discard)
	if err != nil {
		return err
	}
	defer st.Close()
	err = st.InTx(ctx, func(tx *store.Tx) error {
		u, err := tx.EnsureUser(ctx, email)
		if err != nil {
			return err
		}
		if err := tx.SetAdmin(ctx, email, true); err != nil {
			return err
		}
		return tx.Audit(ctx, store.AuditEntry{Action: "user.made_admin", TargetType: "user", TargetID: u.ID, ActorEmail: "cli"})
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s is now an admin\n", email)
	return nil
}

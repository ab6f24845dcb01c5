package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/storetest"
)

func TestKeysRotate_CLI(t *testing.T) {
	dsn := storetest.NewDSN(t)
	vars := map[string]string{"DATABASE_URL": dsn, "AUTHGPTS_SECRET": strings.Repeat("k", 40)}
	ctx := context.Background()
	var out bytes.Buffer
	if err := run(ctx, []string{"keys", "rotate", "--alg", "ES256"}, env(vars), &out, &bytes.Buffer{}); err != nil {
		t.Fatalf("keys rotate: %v", err)
	}
	var res struct {
		Rotated []struct{ Alg, KID string } `json:"rotated"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || len(res.Rotated) != 1 || res.Rotated[0].Alg != "ES256" {
		t.Fatalf("output = %s (%v)", out.String(), err)
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var active, retired int
	_ = st.DB().Get(&active, `SELECT count(*) FROM signing_keys WHERE retired_at IS NULL`)
	_ = st.DB().Get(&retired, `SELECT count(*) FROM signing_keys WHERE retired_at IS NOT NULL AND verify_until > now()`)
	if active != 2 || retired != 1 {
		t.Errorf("active %d, retired %d; want 2 and 1", active, retired)
	}
	var kid string
	_ = st.DB().Get(&kid, `SELECT id FROM signing_keys WHERE retired_at IS NULL AND alg = 'ES256'`)
	if kid != res.Rotated[0].KID {
		t.Errorf("active ES256 key %s, printed %s", kid, res.Rotated[0].KID)
	}
	for _, bad := range [][]string{{"keys"}, {"keys", "rotate", "--alg", "HS256"}, {"keys", "spin"}} {
		if err := run(ctx, bad, env(vars), &bytes.Buffer{}, &bytes.Buffer{}); !errors.Is(err, errUsage) {
			t.Errorf("run(%v) = %v, want a usage error", bad, err)
		}
	}
}

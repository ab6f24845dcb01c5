package store

import (
	"context"
	"time"

	"github.com/lib/pq"
)

// MaxLinkedIdentities caps a group of linked identities, so one person cannot grow a
// group (and the account page that lists it) without bound.
const MaxLinkedIdentities = 10

const (
	// The identity itself first, then the others in the order they were created.
	qIdentityGroup = `
		SELECT ` + userColumns + ` FROM users
		 WHERE id = $1 OR link_id = (SELECT link_id FROM users WHERE id = $1)
		 ORDER BY id <> $1, created_at, id`
	// Linking and unlinking take turns (they are rare, one person's clicks), so the
	// groups cannot change while one of them runs; it then locks the pair and every
	// member of their groups in one statement in id order, so it never waits for a row
	// while holding one another writer needs. NO KEY UPDATE: link_id is no key, and
	// rows that reference a user (grants, sessions, usage) need not wait.
	qLinkingTurn = `SELECT pg_advisory_xact_lock(hashtextextended('identity_links', 0))`
	qLockLinking = `
		SELECT id, coalesce(link_id::text, '') AS link_id FROM users
		 WHERE id = ANY($1)
		    OR link_id IN (SELECT link_id FROM users WHERE id = ANY($1) AND link_id IS NOT NULL)
		 ORDER BY id FOR NO KEY UPDATE`
	// Joining two groups moves every member of b's group (or b alone) into a's.
	qJoinGroup   = `UPDATE users SET link_id = $1 WHERE id = ANY($2) OR (link_id IS NOT NULL AND link_id = NULLIF($3, '')::uuid)`
	qGroupSize   = `SELECT count(*) FROM users WHERE link_id = $1`
	qUnlink      = `UPDATE users SET link_id = NULL WHERE id = $1 AND link_id = $2`
	qDissolveOne = `UPDATE users SET link_id = NULL WHERE link_id = $1 AND (SELECT count(*) FROM users WHERE link_id = $1) = 1`

	qMarkLinkIntent = `UPDATE sessions SET link_intent_at = $2 WHERE id_hash = $1`
	qLinkOffer      = `
		SELECT ` + prefixedUserColumns + `, s.created_at AS session_started, s.link_from_at
		  FROM sessions s JOIN users u ON u.id = s.link_from_user_id
		 WHERE s.id_hash = $1 AND s.expires_at > $2`
	qForgetLinkOffer = `UPDATE sessions SET link_from_user_id = NULL, link_from_at = NULL WHERE id_hash = $1`
)

// IdentityGroup returns the identities linked with userID, userID's own first; a user
// who linked nothing is a group of one. ErrNotFound when the user does not exist.
func (s *Store) IdentityGroup(ctx context.Context, userID string) ([]User, error) {
	if !ValidUUID(userID) {
		return nil, ErrNotFound
	}
	var out []User
	if err := s.selectContext(ctx, &out, qIdentityGroup, userID); err != nil {
		return nil, wrap("identity group", err)
	}
	if len(out) == 0 {
		return nil, ErrNotFound
	}
	return out, nil
}

// UserIDs returns the users' IDs, in order.
func UserIDs(users []User) []string {
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	return ids
}

// LinkIdentities makes a and b (and the identities already linked with either) one
// group, and records it in the audit log as actor. Linking identities already in one
// group changes nothing; a group that would pass MaxLinkedIdentities is ErrConflict; an
// identity of alone (a or b) that is linked with others already is ErrLinkedElsewhere
// (an identity whose provider the operator cannot vouch for must not join two groups:
// handlers/account).
func (s *Store) LinkIdentities(ctx context.Context, a, b string, alone []string, actor AuditEntry) error {
	if !ValidUUID(a) || !ValidUUID(b) || a == b {
		return ErrNotFound
	}
	return wrap("link identities", s.InTx(ctx, func(tx *Tx) error {
		links, sizes, err := tx.lockLinking(ctx, a, b)
		if err != nil {
			return err
		}
		target, other := links[a], links[b]
		if target != "" && target == other {
			return nil
		}
		for _, id := range alone {
			if l, ok := links[id]; ok && l != "" && sizes[l] > 1 {
				return ErrLinkedElsewhere
			}
		}
		if target == "" {
			target = other
			other = ""
		}
		if target == "" {
			if err := tx.getContext(ctx, &target, `SELECT gen_random_uuid()::text`); err != nil {
				return err
			}
		}
		if _, err := tx.q.ExecContext(ctx, qJoinGroup, target, pq.Array([]string{a, b}), other); err != nil {
			return err
		}
		var size int
		if err := tx.getContext(ctx, &size, qGroupSize, target); err != nil {
			return err
		}
		if size > MaxLinkedIdentities {
			return ErrConflict
		}
		actor.Action, actor.TargetType, actor.TargetID = "identity.linked", "user", b
		return tx.Audit(ctx, actor)
	}))
}

// lockLinking waits for linking's turn, locks a, b and the members of their groups, and
// returns the link IDs of a and b ("" for an identity in no group) and the size of each
// of their groups; ErrNotFound when either user does not exist.
func (s *Store) lockLinking(ctx context.Context, a, b string) (links map[string]string, sizes map[string]int, err error) {
	if _, err := s.q.ExecContext(ctx, qLinkingTurn); err != nil {
		return nil, nil, err
	}
	var rows []struct {
		ID     string `db:"id"`
		LinkID string `db:"link_id"`
	}
	if err := s.selectContext(ctx, &rows, qLockLinking, pq.Array([]string{a, b})); err != nil {
		return nil, nil, err
	}
	links, sizes = make(map[string]string, 2), make(map[string]int, 2)
	for _, r := range rows {
		if r.ID == a || r.ID == b {
			links[r.ID] = r.LinkID
		}
		if r.LinkID != "" {
			sizes[r.LinkID]++
		}
	}
	if len(links) != 2 {
		return nil, nil, ErrNotFound
	}
	return links, sizes, nil
}

// UnlinkIdentity takes target out of the group of member (a different identity of the
// same group): from then on they are separate people again. A group left with one
// identity dissolves. ErrNotFound when target is not in member's group.
func (s *Store) UnlinkIdentity(ctx context.Context, member, target string, actor AuditEntry) error {
	if !ValidUUID(member) || !ValidUUID(target) || member == target {
		return ErrNotFound
	}
	return wrap("unlink identity", s.InTx(ctx, func(tx *Tx) error {
		links, _, err := tx.lockLinking(ctx, member, target)
		if err != nil {
			return err
		}
		group := links[member]
		if group == "" || links[target] != group {
			return ErrNotFound
		}
		if err := tx.execOne(ctx, "unlink identity", qUnlink, target, group); err != nil {
			return err
		}
		if _, err := tx.q.ExecContext(ctx, qDissolveOne, group); err != nil {
			return err
		}
		actor.Action, actor.TargetType, actor.TargetID = "identity.unlinked", "user", target
		return tx.Audit(ctx, actor)
	}))
}

// LinkOffer is the identity a browser session replaced at sign-in after it had asked
// to link another identity.
type LinkOffer struct {
	User
	SessionStarted time.Time `db:"session_started"` // when the current identity signed in
	AskedAt        time.Time `db:"link_from_at"`    // when the replaced one asked to link
}

// MarkLinkIntent records on the session with that hash that its identity asks to link
// the next identity signed in with in this browser.
func (s *Store) MarkLinkIntent(ctx context.Context, idHash []byte, now time.Time) error {
	_, err := s.q.ExecContext(ctx, qMarkLinkIntent, idHash, now)
	return wrap("mark link intent", err)
}

// SessionLinkOffer returns the identity the session with that hash replaced after it
// asked to link, or ErrNotFound when there is none (or that user is gone).
func (s *Store) SessionLinkOffer(ctx context.Context, idHash []byte, now time.Time) (LinkOffer, error) {
	var o LinkOffer
	err := s.getContext(ctx, &o, qLinkOffer, idHash, now)
	return o, wrap("session link offer", err)
}

// ForgetLinkOffer drops the session's link offer (it was used or declined).
func (s *Store) ForgetLinkOffer(ctx context.Context, idHash []byte) error {
	_, err := s.q.ExecContext(ctx, qForgetLinkOffer, idHash)
	return wrap("forget link offer", err)
}

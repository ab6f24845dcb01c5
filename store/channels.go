package store

// The PostgreSQL LISTEN/NOTIFY channels, each named once here. A notification is sent in
// the transaction of the change it announces, so it reaches the other instances exactly
// when the change commits (DESIGN.md, "Scaling past one machine"); each instance hears
// them on its one LISTEN connection (store/notify).
const (
	// RevocationsChannel: a grant was revoked ("grant:<id>"), or a client, app or user was
	// suspended or deleted ("client:<id>", "app:<id>", "user:<id>"). The gateway and the
	// introspection endpoint drop the tokens concerned.
	RevocationsChannel = "authgpts_revocations"
	// ClientsChannel: a client, its secrets, an app or its scopes changed ("client:<id>",
	// "app:<id>"), sent by triggers (migration 00004); the OAuth server's caches drop them.
	ClientsChannel = "authgpts_clients"
	// ChannelAppChanged: the portal changed an app's settings, slug or scopes, or deleted
	// it (payload: the app ID); the gateway drops its cached app and the app's tokens.
	ChannelAppChanged = "authgpts_app_changed"
	// ChannelClientChanged: the portal changed a client's name, redirect URIs or secrets,
	// or deleted it or its app (payload: the client ID).
	ChannelClientChanged = "authgpts_client_changed"
	// ConnectionsChannel: an app's connection providers changed ("app:<id>") or a linked
	// account was refreshed, disconnected or revoked ("account:<id>"); every instance
	// drops the tokens and providers it cached (handlers/connections).
	ConnectionsChannel = "authgpts_connections"
	// KeysChannel: a signing key was rotated (payload: the new key's ID); every instance
	// reloads its key set.
	KeysChannel = "authgpts_keys"
	// WebhooksChannel: a transaction wrote webhook deliveries (webhook_emit in migration
	// 00011, a resend, a test event; payload: the app ID); delivery workers wake and claim.
	WebhooksChannel = "authgpts_webhooks"
)

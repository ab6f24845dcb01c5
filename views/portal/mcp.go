package portal

import "time"

// IDMCPPanel is the element id of the app page's MCP section.
const IDMCPPanel = "mcp-panel"

// MCPPanelVM is the app page's MCP section: the URL to give to Claude or ChatGPT and the
// MCP clients (dynamically registered or from a metadata document) that connected.
type MCPPanelVM struct {
	AppURL   string
	Enabled  bool
	MCPURL   string // <base>/gw/<slug>/mcp
	Clients  []MCPClientRow
	Revoked  string // name of the client just revoked, for the confirmation
	Truncate bool   // the list was cut at its limit
}

// MCPClientRow is one connected MCP client.
type MCPClientRow struct {
	ID          string
	Name        string
	Origin      string // "registration" or "metadata_document"
	Users       int64
	ConnectedAt time.Time
	LastUsedAt  *time.Time
}

// mcpOriginLabel names where an MCP client's identity comes from.
func mcpOriginLabel(origin string) string {
	if origin == "metadata_document" {
		return "Metadata document"
	}
	return "Registration (unverified)"
}

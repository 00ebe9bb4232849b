package web

import "time"

// CertificateInfo is one managed name's certificate state, as /hub/api/info shows it to admins.
type CertificateInfo struct {
	// Name is the DNS name (or IP address) the certificate is for.
	Name string `json:"name"`
	// Issuer is the issuer key of the last obtained certificate, e.g. the ACME directory.
	Issuer string `json:"issuer,omitempty"`
	// NotAfter is when the certificate in storage expires; absent when unknown.
	NotAfter *time.Time `json:"not_after,omitempty"`
	// LastObtained is when this process last obtained or renewed it.
	LastObtained *time.Time `json:"last_obtained,omitempty"`
	// Renewals counts renewals by this process.
	Renewals int `json:"renewals"`
	// LastError is the last issuance or renewal error, with its time; cleared by nothing, so
	// compare LastErrorAt with LastObtained.
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
}

// certificateInfo lists the state of every certificate name this process has seen managed, sorted
// by name (Deps.Certificates). The REST API's /hub/api/info adds it for admins as "certificates".
func (h *Hub) certificateInfo() []CertificateInfo {
	if h.deps.Certificates == nil {
		return []CertificateInfo{}
	}
	return h.deps.Certificates()
}

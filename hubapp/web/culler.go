package web

import (
	"github.com/caddyhub/caddyhub/hubapp/culler"
)

// newCuller returns a culler over this hub's engine and store.
func (h *Hub) newCuller(cfg CullerConfig) *culler.Culler {
	return culler.New(cfg, culler.Deps{
		Store:      h.store,
		Engine:     h.eng,
		Activity:   h.serverActivity,
		DeleteUser: h.deleteUser,
		Logger:     h.logger,
	})
}

// startCuller runs the culler loop until stopAPI when a culler block is configured.
func (h *Hub) startCuller(st *apiState) {
	if h.cfg.Culler == nil {
		return
	}
	c := h.newCuller(*h.cfg.Culler)
	st.culler = c
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		c.Run(st.ctx)
	}()
}

//go:build !unix

package hubapp

import (
	"os"
	"syscall"
)

func newProcessGroupAttr() *syscall.SysProcAttr { return nil }

func terminate(p *os.Process) { _ = p.Kill() }

func killGroup(p *os.Process) { _ = p.Kill() }

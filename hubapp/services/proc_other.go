//go:build !unix

package services

import (
	"os"
	"syscall"
)

func newProcessGroupAttr() *syscall.SysProcAttr { return nil }

func terminate(p *os.Process) { _ = p.Kill() }

func killGroup(p *os.Process) { _ = p.Kill() }

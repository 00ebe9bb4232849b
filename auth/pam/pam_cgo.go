//go:build cgo && linux

package pam

// The PAM types, constants and prototypes below are Linux-PAM's ABI
// (<security/_pam_types.h>, unchanged since Linux-PAM 0.x), declared here
// so that the build needs no libpam0g-dev. libpam.so.0 is opened with
// dlopen at the first login.

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pam_handle pam_handle_t;
struct pam_message { int msg_style; const char *msg; };
struct pam_response { char *resp; int resp_retcode; };
struct pam_conv {
	int (*conv)(int num_msg, const struct pam_message **msg, struct pam_response **resp, void *appdata_ptr);
	void *appdata_ptr;
};

enum {
	CHUB_PAM_SUCCESS = 0,
	CHUB_PAM_BUF_ERR = 5,
	CHUB_PAM_CONV_ERR = 19,

	CHUB_PAM_PROMPT_ECHO_OFF = 1,
	CHUB_PAM_PROMPT_ECHO_ON = 2,
	CHUB_PAM_ERROR_MSG = 3,
	CHUB_PAM_TEXT_INFO = 4,
	CHUB_PAM_MAX_NUM_MSG = 32,

	CHUB_PAM_DISALLOW_NULL_AUTHTOK = 0x0001,
	CHUB_PAM_ESTABLISH_CRED = 0x0002,
	CHUB_PAM_DELETE_CRED = 0x0004,

	CHUB_PAM_TTY = 3,
	CHUB_PAM_RHOST = 4,
};

// Which call failed, for the error message.
enum { CHUB_STAGE_START = 1, CHUB_STAGE_AUTH, CHUB_STAGE_ACCT, CHUB_STAGE_SESSION, CHUB_STAGE_CRED };

static struct {
	void *lib;
	int (*start)(const char *, const char *, const struct pam_conv *, pam_handle_t **);
	int (*end)(pam_handle_t *, int);
	int (*authenticate)(pam_handle_t *, int);
	int (*acct_mgmt)(pam_handle_t *, int);
	int (*setcred)(pam_handle_t *, int);
	int (*open_session)(pam_handle_t *, int);
	int (*close_session)(pam_handle_t *, int);
	int (*set_item)(pam_handle_t *, int, const void *);
	const char *(*strerror)(pam_handle_t *, int);
} chub_pam;

// chub_call is one conversation: what the conversation function answers,
// and what came back. It lives in C memory for the whole PAM transaction.
struct chub_call {
	const char *service;
	const char *user;
	const char *rhost;     // the client's address, or NULL
	char *password;        // NULL for session calls: password prompts then fail
	int stage;             // CHUB_STAGE_* of the failing call
	char strerr[256];      // pam_strerror of the failing call
	char modmsg[256];      // the last PAM_ERROR_MSG a module sent
};

static void chub_wipe(char *s) {
	if (s == NULL) return;
	volatile char *p = s;
	while (*p) *p++ = 0;
}

// chub_pam_load opens the library and resolves the symbols. On failure it
// writes the reason into err and leaves chub_pam untouched. The Go side
// calls it once, under a lock.
static int chub_pam_load(const char *name, char *err, size_t errlen) {
	void *lib = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
	if (!lib) {
		const char *e = dlerror();
		snprintf(err, errlen, "%s", e ? e : "dlopen failed");
		return -1;
	}
	void *syms[9];
	static const char *names[9] = {"pam_start", "pam_end", "pam_authenticate", "pam_acct_mgmt", "pam_setcred",
		"pam_open_session", "pam_close_session", "pam_set_item", "pam_strerror"};
	for (int i = 0; i < 9; i++) {
		syms[i] = dlsym(lib, names[i]);
		if (!syms[i]) {
			snprintf(err, errlen, "%s: symbol %s not found", name, names[i]);
			dlclose(lib);
			return -1;
		}
	}
	*(void **)&chub_pam.start = syms[0];
	*(void **)&chub_pam.end = syms[1];
	*(void **)&chub_pam.authenticate = syms[2];
	*(void **)&chub_pam.acct_mgmt = syms[3];
	*(void **)&chub_pam.setcred = syms[4];
	*(void **)&chub_pam.open_session = syms[5];
	*(void **)&chub_pam.close_session = syms[6];
	*(void **)&chub_pam.set_item = syms[7];
	*(void **)&chub_pam.strerror = syms[8];
	chub_pam.lib = lib;
	return 0;
}

static void chub_free_responses(struct pam_response *r, int n) {
	for (int i = 0; i < n; i++) {
		if (r[i].resp) {
			chub_wipe(r[i].resp);
			free(r[i].resp);
		}
	}
	free(r);
}

// chub_conv answers PAM's prompts: the password for a hidden prompt
// (PAM_PROMPT_ECHO_OFF), the username for a visible one
// (PAM_PROMPT_ECHO_ON). Informational messages get no answer; the last
// error message is kept for the log. Prompts it cannot answer (binary,
// radio) fail the conversation. Linux-PAM passes msg as an array of
// pointers. PAM frees the responses.
static int chub_conv(int n, const struct pam_message **msg, struct pam_response **resp, void *appdata) {
	struct chub_call *c = appdata;
	if (n <= 0 || n > CHUB_PAM_MAX_NUM_MSG || msg == NULL || resp == NULL || c == NULL) return CHUB_PAM_CONV_ERR;
	struct pam_response *r = calloc((size_t)n, sizeof *r);
	if (r == NULL) return CHUB_PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		const struct pam_message *m = msg[i];
		const char *answer = NULL;
		if (m == NULL) goto fail;
		switch (m->msg_style) {
		case CHUB_PAM_PROMPT_ECHO_OFF:
			answer = c->password;
			break;
		case CHUB_PAM_PROMPT_ECHO_ON:
			answer = c->user;
			break;
		case CHUB_PAM_ERROR_MSG:
			if (m->msg) snprintf(c->modmsg, sizeof c->modmsg, "%s", m->msg);
			continue;
		case CHUB_PAM_TEXT_INFO:
			continue;
		default:
			goto fail;
		}
		if (answer == NULL) goto fail;
		r[i].resp = strdup(answer);
		if (r[i].resp == NULL) {
			chub_free_responses(r, n);
			return CHUB_PAM_BUF_ERR;
		}
	}
	*resp = r;
	return CHUB_PAM_SUCCESS;
fail:
	chub_free_responses(r, n);
	return CHUB_PAM_CONV_ERR;
}

static void chub_fail(struct chub_call *c, pam_handle_t *h, int stage, int rc) {
	c->stage = stage;
	const char *s = chub_pam.strerror(h, rc);
	snprintf(c->strerr, sizeof c->strerr, "%s", s ? s : "unknown PAM error");
}

// chub_pam_auth runs pam_start, pam_authenticate, pam_acct_mgmt (if
// check_account) and pam_end on one handle.
static int chub_pam_auth(struct chub_call *c, int check_account) {
	struct pam_conv conv = { chub_conv, c };
	pam_handle_t *h = NULL;
	int rc = chub_pam.start(c->service, c->user, &conv, &h);
	if (rc != CHUB_PAM_SUCCESS) {
		chub_fail(c, h, CHUB_STAGE_START, rc);
		if (h) chub_pam.end(h, rc);
		return rc;
	}
	if (c->rhost) chub_pam.set_item(h, CHUB_PAM_RHOST, c->rhost);
	rc = chub_pam.authenticate(h, CHUB_PAM_DISALLOW_NULL_AUTHTOK);
	if (rc != CHUB_PAM_SUCCESS) {
		chub_fail(c, h, CHUB_STAGE_AUTH, rc);
	} else if (check_account) {
		rc = chub_pam.acct_mgmt(h, CHUB_PAM_DISALLOW_NULL_AUTHTOK);
		if (rc != CHUB_PAM_SUCCESS) chub_fail(c, h, CHUB_STAGE_ACCT, rc);
	}
	chub_pam.end(h, rc);
	return rc;
}

// chub_pam_session opens (open_session, then setcred ESTABLISH) or closes
// (close_session, then setcred DELETE) a session, as pamela does for
// JupyterHub.
static int chub_pam_session(struct chub_call *c, int open) {
	struct pam_conv conv = { chub_conv, c };
	pam_handle_t *h = NULL;
	int rc = chub_pam.start(c->service, c->user, &conv, &h);
	if (rc != CHUB_PAM_SUCCESS) {
		chub_fail(c, h, CHUB_STAGE_START, rc);
		if (h) chub_pam.end(h, rc);
		return rc;
	}
	chub_pam.set_item(h, CHUB_PAM_TTY, "jupyterhub");
	if (open) {
		rc = chub_pam.open_session(h, 0);
		if (rc != CHUB_PAM_SUCCESS) {
			chub_fail(c, h, CHUB_STAGE_SESSION, rc);
		} else {
			rc = chub_pam.setcred(h, CHUB_PAM_ESTABLISH_CRED);
			if (rc != CHUB_PAM_SUCCESS) chub_fail(c, h, CHUB_STAGE_CRED, rc);
		}
	} else {
		rc = chub_pam.close_session(h, 0);
		if (rc != CHUB_PAM_SUCCESS) {
			chub_fail(c, h, CHUB_STAGE_SESSION, rc);
		} else {
			rc = chub_pam.setcred(h, CHUB_PAM_DELETE_CRED);
			if (rc != CHUB_PAM_SUCCESS) chub_fail(c, h, CHUB_STAGE_CRED, rc);
		}
	}
	chub_pam.end(h, rc);
	return rc;
}

// chub_test_conv runs chub_conv on n messages and copies the answers into
// out (NULL-terminated strings, "" for none), for unit tests.
static int chub_test_conv(int n, const int *styles, const char **texts, struct chub_call *c, char (*out)[64]) {
	struct pam_message *msgs = calloc((size_t)(n > 0 ? n : 1), sizeof *msgs);
	const struct pam_message **ptrs = calloc((size_t)(n > 0 ? n : 1), sizeof *ptrs);
	struct pam_response *resp = NULL;
	if (!msgs || !ptrs) { free(msgs); free(ptrs); return CHUB_PAM_BUF_ERR; }
	for (int i = 0; i < n; i++) {
		msgs[i].msg_style = styles[i];
		msgs[i].msg = texts[i];
		ptrs[i] = &msgs[i];
	}
	int rc = chub_conv(n, ptrs, &resp, c);
	if (rc == CHUB_PAM_SUCCESS) {
		for (int i = 0; i < n; i++) {
			snprintf(out[i], 64, "%s", resp[i].resp ? resp[i].resp : "");
			if (resp[i].resp_retcode != 0) rc = -1;
		}
		chub_free_responses(resp, n);
	}
	free(msgs);
	free(ptrs);
	return rc;
}
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/caddyhub/caddyhub/auth"
)

// unavailable is nil: this build has PAM.
var unavailable error

// libraryName is the shared library opened at the first PAM call.
const libraryName = "libpam.so.0"

// Linux-PAM return codes that this package tells apart
// (<security/_pam_types.h>).
const (
	pamSuccess           = 0
	pamPermDenied        = 6
	pamAuthErr           = 7
	pamCredInsufficient  = 8
	pamUserUnknown       = 10
	pamMaxTries          = 11
	pamNewAuthtokReqd    = 12
	pamAcctExpired       = 13
	pamAuthtokExpired    = 27
	pamPromptEchoOff     = 1
	pamPromptEchoOn      = 2
	pamErrorMsg          = 3
	pamTextInfo          = 4
	pamConvErr           = 19
	pamBinaryPrompt      = 7
	stageStart           = 1
	stageAuth            = 2
	stageAcct            = 3
	stageSession         = 4
	stageCred            = 5
	maxConcurrentPAMCall = 16
)

var (
	loadMu  sync.Mutex
	loaded  bool
	loadErr error
)

// loadLibrary opens libpam once. A failure is remembered too: the library does
// not appear while caddy runs.
func loadLibrary(name string) error {
	loadMu.Lock()
	defer loadMu.Unlock()
	if loaded {
		return loadErr
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var buf [512]C.char
	if C.chub_pam_load(cname, &buf[0], C.size_t(len(buf))) != 0 {
		err := fmt.Errorf("loading %s: %s (install libpam0g, the PAM library)", name, C.GoString(&buf[0]))
		if name != libraryName {
			return err // test probes do not poison the real library
		}
		loadErr = err
	}
	loaded = name == libraryName
	return loadErr
}

// pamSlots bounds concurrent PAM transactions: each one holds an OS thread
// for its whole run, several seconds after a wrong password (pam_faildelay).
var pamSlots = make(chan struct{}, maxConcurrentPAMCall)

// pamError is a failed PAM call.
type pamError struct {
	stage  int
	code   int
	text   string // pam_strerror
	module string // the last error message a module sent, if any
}

func (e *pamError) Error() string {
	op := map[int]string{stageStart: "pam_start", stageAuth: "pam_authenticate", stageAcct: "pam_acct_mgmt",
		stageSession: "pam session", stageCred: "pam_setcred"}[e.stage]
	if op == "" {
		op = "pam"
	}
	s := fmt.Sprintf("%s: %s (code %d)", op, e.text, e.code)
	if e.module != "" {
		s += ": " + e.module
	}
	return s
}

// authenticate checks user's password with the PAM stack of service and,
// if checkAccount, the account. Wrong credentials wrap
// auth.ErrInvalidCredentials, a refused account auth.ErrNotAllowed; other
// errors are failures of the system.
func authenticate(ctx context.Context, service, user, password string, checkAccount bool) error {
	rhost := auth.RemoteIP(ctx)
	err := run(ctx, func() error {
		c := newCall(service, user, password)
		defer c.free()
		if rhost != "" && !strings.ContainsRune(rhost, 0) {
			c.c.rhost = C.CString(rhost)
		}
		ca := C.int(0)
		if checkAccount {
			ca = 1
		}
		rc := int(C.chub_pam_auth(c.c, ca))
		return c.result(rc)
	})
	var pe *pamError
	if !errors.As(err, &pe) {
		return err
	}
	switch {
	case pe.stage == stageAuth && (pe.code == pamAuthErr || pe.code == pamUserUnknown || pe.code == pamMaxTries ||
		pe.code == pamCredInsufficient || pe.code == pamPermDenied):
		return fmt.Errorf("%w: %w", auth.ErrInvalidCredentials, err)
	case pe.stage == stageAcct && (pe.code == pamAcctExpired || pe.code == pamNewAuthtokReqd || pe.code == pamAuthtokExpired ||
		pe.code == pamPermDenied || pe.code == pamAuthErr || pe.code == pamUserUnknown):
		return fmt.Errorf("%w: the account check refused %q: %w", auth.ErrNotAllowed, auth.Truncate(user, 32), err)
	}
	return err
}

// session opens or closes a PAM session for user.
func session(ctx context.Context, service, user string, open bool) error {
	return run(ctx, func() error {
		c := newCall(service, user, "")
		defer c.free()
		o := C.int(0)
		if open {
			o = 1
		}
		return c.result(int(C.chub_pam_session(c.c, o)))
	})
}

// run calls f on a locked OS thread in its own goroutine, at most
// maxConcurrentPAMCall at once. PAM calls cannot be interrupted: when ctx
// ends first, run returns and f finishes in the background.
func run(ctx context.Context, f func() error) error {
	if err := loadLibrary(libraryName); err != nil {
		return err
	}
	select {
	case pamSlots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("waiting for a free PAM slot: %w", ctx.Err())
	}
	done := make(chan error, 1)
	go func() {
		defer func() { <-pamSlots }()
		// One thread for the whole transaction, and never unlocked: PAM
		// modules may leave per-thread state behind (credentials, keyrings,
		// umask-like settings of session modules), so the goroutine exits
		// locked and the Go runtime throws the thread away.
		runtime.LockOSThread()
		done <- f()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("waiting for PAM: %w", ctx.Err())
	}
}

// call owns the C memory of one PAM transaction.
type call struct {
	c *C.struct_chub_call
}

func newCall(service, user, password string) *call {
	c := (*C.struct_chub_call)(C.calloc(1, C.sizeof_struct_chub_call))
	c.service = C.CString(service)
	c.user = C.CString(user)
	if password != "" {
		c.password = C.CString(password)
	}
	return &call{c: c}
}

func (c *call) free() {
	C.free(unsafe.Pointer(c.c.service))
	C.free(unsafe.Pointer(c.c.user))
	C.free(unsafe.Pointer(c.c.rhost))
	if c.c.password != nil {
		C.chub_wipe(c.c.password)
		C.free(unsafe.Pointer(c.c.password))
	}
	C.free(unsafe.Pointer(c.c))
}

func (c *call) result(rc int) error {
	if rc == pamSuccess {
		return nil
	}
	return &pamError{
		stage:  int(c.c.stage),
		code:   rc,
		text:   C.GoString(&c.c.strerr[0]),
		module: C.GoString(&c.c.modmsg[0]),
	}
}

// converse runs the conversation function on messages of the given styles
// and texts, as a PAM module would, and returns the answers ("" for
// none), the return code and the error message kept for the log. For
// tests.
func converse(styles []int, texts []string, user, password string) (answers []string, rc int, moduleMsg string) {
	c := newCall("test", user, password)
	defer c.free()
	n := len(styles)
	cStyles := (*C.int)(C.calloc(C.size_t(n+1), C.sizeof_int))
	defer C.free(unsafe.Pointer(cStyles))
	cTexts := (**C.char)(C.calloc(C.size_t(n+1), C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(cTexts))
	out := (*[64]C.char)(C.calloc(C.size_t(n+1), 64))
	defer C.free(unsafe.Pointer(out))
	styleSlice := unsafe.Slice(cStyles, n+1)
	textSlice := unsafe.Slice(cTexts, n+1)
	for i := range n {
		styleSlice[i] = C.int(styles[i])
		textSlice[i] = C.CString(texts[i])
	}
	defer func() {
		for i := range n {
			C.free(unsafe.Pointer(textSlice[i]))
		}
	}()
	rc = int(C.chub_test_conv(C.int(n), cStyles, cTexts, c.c, out))
	if rc == pamSuccess {
		outSlice := unsafe.Slice(out, n+1)
		for i := range n {
			answers = append(answers, C.GoString(&outSlice[i][0]))
		}
	}
	return answers, rc, C.GoString(&c.c.modmsg[0])
}

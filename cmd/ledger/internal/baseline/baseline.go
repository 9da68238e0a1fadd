package baseline

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // database/sql driver "sqlite3"

	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/sqlitedsn"
)

const schema = `
CREATE TABLE IF NOT EXISTS user_actions (
	id          INTEGER PRIMARY KEY,
	user_id     TEXT NOT NULL,
	action_type TEXT NOT NULL,
	target_type TEXT NOT NULL,
	target_id   TEXT NOT NULL,
	is_deleted  INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS user_actions_target ON user_actions(target_type, target_id, action_type, is_deleted);
CREATE INDEX IF NOT EXISTS user_actions_user ON user_actions(user_id, target_type, target_id, action_type, is_deleted);
`

// Server is the legacy design behind an http.Handler. It is safe for
// concurrent use.
type Server struct {
	write *sql.DB
	read  *sql.DB
	kinds domain.KindSet
	mux   *http.ServeMux
}

// Open creates or opens the baseline database at path. It returns the
// driver's error when the file cannot be opened or migrated.
func Open(ctx context.Context, path string, kinds domain.KindSet) (*Server, error) {
	q := url.Values{"_txlock": {"immediate"}, "_journal_mode": {"WAL"}, "_synchronous": {"FULL"}, "_busy_timeout": {"10000"}}
	w, err := sql.Open("sqlite3", sqlitedsn.File(path, q))
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1) // SQLite has one writer; a pool would only spin on SQLITE_BUSY
	if _, err := w.ExecContext(ctx, schema); err != nil {
		w.Close()
		return nil, fmt.Errorf("migrate baseline: %w", err)
	}
	q.Set("mode", "ro")
	r, err := sql.Open("sqlite3", sqlitedsn.File(path, q))
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(8)
	s := &Server{write: w, read: r, kinds: kinds, mux: http.NewServeMux()}
	s.mux.HandleFunc("PUT /v1/targets/{type}/{id}/{kind}/{user}", s.handleSet(true))
	s.mux.HandleFunc("DELETE /v1/targets/{type}/{id}/{kind}/{user}", s.handleSet(false))
	s.mux.HandleFunc("GET /v1/targets/{type}/{id}", s.handleTarget)
	s.mux.HandleFunc("GET /v1/targets", s.handleTargets)
	s.mux.HandleFunc("GET /v1/targets/{type}/{id}/{kind}", s.handleList)
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	return s, nil
}

// ServeHTTP serves the baseline API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close closes the database.
func (s *Server) Close() error { return errors.Join(s.read.Close(), s.write.Close()) }

type targetJSON struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

type view struct {
	Target targetJSON      `json:"target"`
	Counts map[string]int  `json:"counts"`
	Viewer map[string]bool `json:"viewer,omitempty"`
}

func (s *Server) handleSet(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, k, ok := s.targetKind(w, r)
		if !ok {
			return
		}
		u, err := domain.NewUserID(r.PathValue("user"))
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		changed, err := s.set(r.Context(), t, k, u, on)
		if err != nil {
			fail(w, http.StatusServiceUnavailable, err)
			return
		}
		v, err := s.view(r.Context(), t, &u)
		if err != nil {
			fail(w, http.StatusServiceUnavailable, err)
			return
		}
		writeJSON(w, map[string]any{"changed": changed, "active": on, "target": v.Target,
			"user": u.String(), "kind": k.String(), "counts": v.Counts, "viewer": v.Viewer})
	}
}

// set is the legacy write: insert a row on like, flag it deleted on cancel.
func (s *Server) set(ctx context.Context, t domain.Target, k domain.Kind, u domain.UserID, on bool) (bool, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	now := time.Now().UnixMicro()
	var res sql.Result
	if on {
		res, err = tx.ExecContext(ctx, `INSERT INTO user_actions(user_id, action_type, target_type, target_id, created_at, updated_at)
			SELECT ?1, ?2, ?3, ?4, ?5, ?5 WHERE NOT EXISTS (SELECT 1 FROM user_actions
			WHERE user_id = ?1 AND action_type = ?2 AND target_type = ?3 AND target_id = ?4 AND is_deleted = 0)`,
			u.String(), k.String(), t.Type(), t.ID(), now)
	} else {
		res, err = tx.ExecContext(ctx, `UPDATE user_actions SET is_deleted = 1, updated_at = ?
			WHERE user_id = ? AND action_type = ? AND target_type = ? AND target_id = ? AND is_deleted = 0`,
			now, u.String(), k.String(), t.Type(), t.ID())
	}
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, tx.Commit()
}

// view counts on read, as the legacy design does.
func (s *Server) view(ctx context.Context, t domain.Target, viewer *domain.UserID) (view, error) {
	v := view{Target: targetJSON{t.Type(), t.ID()}, Counts: map[string]int{}}
	for _, k := range s.kinds.Names() {
		v.Counts[k] = 0
	}
	rows, err := s.read.QueryContext(ctx, `SELECT action_type, COUNT(*) FROM user_actions
		WHERE target_type = ? AND target_id = ? AND is_deleted = 0 GROUP BY action_type`, t.Type(), t.ID())
	if err != nil {
		return v, err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return v, err
		}
		v.Counts[k] = n
	}
	if err := rows.Err(); err != nil || viewer == nil {
		return v, err
	}
	return v, s.viewerState(ctx, &v, t, *viewer)
}

func (s *Server) viewerState(ctx context.Context, v *view, t domain.Target, u domain.UserID) error {
	v.Viewer = map[string]bool{}
	for _, k := range s.kinds.Names() {
		v.Viewer[k] = false
	}
	rows, err := s.read.QueryContext(ctx, `SELECT DISTINCT action_type FROM user_actions
		WHERE user_id = ? AND target_type = ? AND target_id = ? AND is_deleted = 0`, u.String(), t.Type(), t.ID())
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return err
		}
		v.Viewer[k] = true
	}
	return rows.Err()
}

func (s *Server) handleTarget(w http.ResponseWriter, r *http.Request) {
	t, err := domain.NewTarget(r.PathValue("type"), r.PathValue("id"))
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	viewer, err := optionalViewer(r)
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	v, err := s.view(r.Context(), t, viewer)
	if err != nil {
		fail(w, http.StatusServiceUnavailable, err)
		return
	}
	writeJSON(w, v)
}

func (s *Server) handleTargets(w http.ResponseWriter, r *http.Request) {
	ts := r.URL.Query()["t"]
	if len(ts) == 0 || len(ts) > 200 {
		fail(w, http.StatusBadRequest, errors.New("t: 1..200 targets"))
		return
	}
	viewer, err := optionalViewer(r)
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	items := make([]view, 0, len(ts))
	for _, raw := range ts {
		t, err := domain.ParseTarget(raw)
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		v, err := s.view(r.Context(), t, viewer)
		if err != nil {
			fail(w, http.StatusServiceUnavailable, err)
			return
		}
		items = append(items, v)
	}
	writeJSON(w, map[string]any{"items": items})
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	t, k, ok := s.targetKind(w, r)
	if !ok {
		return
	}
	var err error
	limit := 50
	if l := r.URL.Query().Get("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 1 || limit > 1000 {
			fail(w, http.StatusBadRequest, errors.New("limit: 1..1000"))
			return
		}
	}
	rows, err := s.read.QueryContext(r.Context(), `SELECT user_id, created_at FROM user_actions
		WHERE target_type = ? AND target_id = ? AND action_type = ? AND is_deleted = 0
		ORDER BY id DESC LIMIT ?`, t.Type(), t.ID(), k.String(), limit)
	if err != nil {
		fail(w, http.StatusServiceUnavailable, err)
		return
	}
	defer rows.Close()
	type item struct {
		User  string    `json:"user"`
		Since time.Time `json:"since"`
	}
	items := []item{}
	for rows.Next() {
		var u string
		var at int64
		if err := rows.Scan(&u, &at); err != nil {
			fail(w, http.StatusServiceUnavailable, err)
			return
		}
		items = append(items, item{User: u, Since: time.UnixMicro(at).UTC()})
	}
	writeJSON(w, map[string]any{"items": items})
}

// targetKind parses the {type}/{id} and {kind} path values, answering 400
// or 404 itself when they are bad.
func (s *Server) targetKind(w http.ResponseWriter, r *http.Request) (domain.Target, domain.Kind, bool) {
	t, err := domain.NewTarget(r.PathValue("type"), r.PathValue("id"))
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return t, domain.Kind{}, false
	}
	k, err := s.kinds.Parse(r.PathValue("kind"))
	if err != nil {
		fail(w, http.StatusNotFound, err)
		return t, k, false
	}
	return t, k, true
}

func optionalViewer(r *http.Request) (*domain.UserID, error) {
	v := r.URL.Query().Get("viewer")
	if v == "" {
		return nil, nil
	}
	u, err := domain.NewUserID(v)
	return &u, err
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"status": status, "title": http.StatusText(status),
		"detail": strings.TrimSpace(err.Error())})
}

// Seed inserts users distinct active rows of kind k for target t in one
// transaction: a popular target's history, for benchmarks.
func (s *Server) Seed(ctx context.Context, t domain.Target, k domain.Kind, users int) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO user_actions(user_id, action_type, target_type, target_id, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	now := time.Now().UnixMicro()
	for i := range users {
		if _, err := stmt.ExecContext(ctx, fmt.Sprintf("seed-%d", i), k.String(), t.Type(), t.ID(), now, now); err != nil {
			return err
		}
	}
	return tx.Commit()
}

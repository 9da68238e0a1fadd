package projections

var viewerTable = &interactionTable{
	table: "viewer",
	columns: `user TEXT NOT NULL, target_type TEXT NOT NULL, target_id TEXT NOT NULL,
		kind TEXT NOT NULL, since INTEGER NOT NULL /* unix ms */, position INTEGER NOT NULL`,
	key:    `user, target_type, target_id, kind`,
	delete: `user = ? AND target_type = ? AND target_id = ? AND kind = ?`,
	insert: `user, target_type, target_id, kind, since, position`,
	order: func(b *batch, c *change) sortKey {
		return sortKey{pack(b.userRank[c.key.user], b.targetRank[c.key.target]), uint64(b.kindRank[c.key.kind])}
	},
	delArgs: func(b *batch, c *change) []any {
		t := b.target(c.key.target)
		return []any{b.user(c.key), t.ttype, t.tid, b.kind(c.key.kind)}
	},
	insArgs: func(args []any, v *boxed, c *change) []any {
		k := c.key
		return append(args, v.users[k.user], v.ttypes[k.target], v.tids[k.target], v.kinds[k.kind], c.since, c.pos)
	},
}

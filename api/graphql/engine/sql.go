package engine

import (
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/echain/echain-indexer/schema"
	"github.com/echain/echain-indexer/store/ddl"
)

// bound is the block a read is answered at.
type bound struct {
	current bool  // the latest state: the snapshot's head (current versions)
	at      int64 // when !current
}

// maxNesting bounds nested filters (`event_: { organizer_: { ... } }`), which the depth limit
// of the query does not see.
const maxNesting = 8

// builder assembles one parameterised statement. Client values only ever become parameters.
type builder struct {
	m      *model
	b      bound
	args   []any
	aliasN int
	// collate is appended to text columns where their order matters: empty when the columns
	// already sort byte-wise (C collation), else ` COLLATE "C"`.
	collate string
}

// textArray is a text[] parameter whose elements pgx encodes through pointers (textElem): a
// []string, or a plain *string, would box (allocate) each string on the way.
type textArray []string

// textElem is an element of a textArray.
type textElem string

func (t *textElem) TextValue() (pgtype.Text, error) {
	return pgtype.Text{String: string(*t), Valid: true}, nil
}

func (a textArray) Dimensions() []pgtype.ArrayDimension {
	if a == nil {
		return nil
	}
	return []pgtype.ArrayDimension{{Length: int32(len(a)), LowerBound: 1}}
}

func (a textArray) Index(i int) any { return (*textElem)(&a[i]) }

func (a textArray) IndexType() any { return (*textElem)(nil) }

func (q *builder) param(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

func (q *builder) alias() string {
	q.aliasN++
	return "x" + strconv.Itoa(q.aliasN)
}

// visible restricts alias to the versions visible at the bound; "" means all rows are visible.
func (q *builder) visible(e *entity, alias string) string {
	if q.b.current {
		return ddl.Visible(e.EntityType, alias, "")
	}
	return ddl.Visible(e.EntityType, alias, q.param(int32(q.b.at))+"::int4")
}

func and(conds ...string) string {
	var parts []string
	for _, c := range conds {
		if c != "" {
			parts = append(parts, c)
		}
	}
	return strings.Join(parts, " AND ")
}

func where(conds ...string) string {
	c := and(conds...)
	if c == "" {
		return ""
	}
	return " WHERE " + c
}

func col(alias string, f *schema.Field) string { return alias + "." + ddl.Quote(f.Column) }

// textual kinds are stored as text; their order is byte order (graph-node runs on the C locale).
func textual(f *schema.Field) bool {
	return f.Kind == schema.KindID || f.Kind == schema.KindString || f.Kind == schema.KindEntity
}

// indexPrefix is the length of the String prefix the store indexes (store/ddl.StringIndexExpr):
// ORDER BY repeats left(col, 256) so pages ordered by a String can walk those indexes. Filters
// compare the plain column: the indexes are partial, and PostgreSQL keeps no statistics for the
// expressions of partial indexes, so a left(col, 256) condition would be estimated at 0.5% of
// the rows whatever the value (a status of two values chose the status index over the order of
// start_time and ran 20x slower).
const indexPrefix = "256"

func isString(f *schema.Field) bool { return f.Kind == schema.KindString && !f.List }

// sortExprs are the ORDER BY items a column sorts by.
func (q *builder) sortExprs(alias string, f *schema.Field) []string {
	c := col(alias, f)
	if isString(f) {
		return []string{"left(" + c + ", " + indexPrefix + ")" + q.collate, c + q.collate}
	}
	if textual(f) {
		return []string{c + q.collate}
	}
	return []string{c}
}

// sortKeys renders sort items with a direction each.
func sortKeys(items []string, dir string) string {
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = it + dir
	}
	return strings.Join(parts, ", ")
}

// filter compiles a where object for entity e read through alias. "" means no condition.
func (q *builder) filter(e *entity, alias string, m map[string]any, depth int) (string, error) {
	if depth > maxNesting {
		return "", errorf(codeBadFilter, "where: filters nest deeper than %d levels", maxNesting)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// A stable key order gives the same SQL text for the same filter shape, so the
	// connection's prepared statement cache hits.
	sort.Strings(keys)
	var conds []string
	for _, k := range keys {
		v := m[k]
		var c string
		var err error
		switch k {
		case "and", "or":
			c, err = q.combine(e, alias, k, v, depth)
		case "_change_block":
			c, err = q.changeBlock(e, alias, v)
		default:
			fk, ok := e.filterKeys[k]
			if !ok {
				return "", errorf(codeBadFilter, "where: %s has no filter field %q", e.Name, k)
			}
			c, err = q.condition(e, alias, k, fk, v, depth)
		}
		if err != nil {
			return "", err
		}
		if c != "" {
			conds = append(conds, c)
		}
	}
	return and(conds...), nil
}

func asList(v any) []any {
	switch l := v.(type) {
	case []any:
		return l
	case nil:
		return nil
	default: // GraphQL input coercion: a single value stands for a list of one
		return []any{l}
	}
}

func (q *builder) combine(e *entity, alias, k string, v any, depth int) (string, error) {
	if v == nil {
		return "", nil
	}
	var parts []string
	for _, item := range asList(v) {
		sub, ok := item.(map[string]any)
		if !ok {
			return "", errorf(codeBadFilter, "where: %s expects a list of %s_filter objects, got %s", k, e.Name, describe(item))
		}
		c, err := q.filter(e, alias, sub, depth+1)
		if err != nil {
			return "", err
		}
		if c == "" {
			c = "true"
		}
		parts = append(parts, "("+c+")")
	}
	if len(parts) == 0 {
		if k == "or" {
			return "false", nil
		}
		return "", nil
	}
	if k == "and" {
		return strings.Join(parts, " AND "), nil
	}
	return "(" + strings.Join(parts, " OR ") + ")", nil
}

func (q *builder) changeBlock(e *entity, alias string, v any) (string, error) {
	if v == nil {
		return "", nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return "", errorf(codeBadFilter, "where: _change_block expects {number_gte: Int}, got %s", describe(v))
	}
	n, err := coerceInt32(m["number_gte"])
	if err != nil {
		return "", errorf(codeBadFilter, "where: _change_block.number_gte: %v", err)
	}
	return ddl.ChangedSince(e.EntityType, alias, q.param(n)+"::int4"), nil
}

func (q *builder) condition(e *entity, alias, key string, fk filterKey, v any, depth int) (string, error) {
	f := fk.field
	if fk.op == opNested {
		if v == nil {
			return "", nil
		}
		sub, ok := v.(map[string]any)
		if !ok {
			return "", errorf(codeBadFilter, "where: %s expects a %s_filter object, got %s", key, f.Ref, describe(v))
		}
		target := q.m.byName[f.Ref]
		x := q.alias()
		inner, err := q.filter(target, x, sub, depth+1)
		if err != nil {
			return "", err
		}
		vis := q.visible(target, x)
		if f.DerivedFrom != "" {
			back := target.Columns[target.ColumnIndex(f.DerivedFrom)]
			return col(alias, e.Columns[0]) + " IN (SELECT " + col(x, back) + " FROM " + target.table + " " + x + where(vis, inner) + ")", nil
		}
		return col(alias, f) + " IN (SELECT " + col(x, target.Columns[0]) + " FROM " + target.table + " " + x + where(vis, inner) + ")", nil
	}

	c := col(alias, f)
	nullable := !f.NonNull
	notNull := func(s string) string {
		if nullable {
			return "(" + c + " IS NOT NULL AND " + s + ")"
		}
		return s
	}
	if v == nil {
		switch fk.op {
		case opEq:
			return c + " IS NULL", nil
		case opNot:
			return c + " IS NOT NULL", nil
		}
		return "", errorf(codeBadFilter, "where: %s does not accept null", key)
	}

	if f.List {
		p, err := q.listParam(f.Kind, v, key)
		if err != nil {
			return "", err
		}
		switch fk.op {
		case opEq:
			return c + " = " + p, nil
		case opNot:
			return c + " <> " + p, nil
		case opContains:
			return c + " @> " + p, nil
		case opNotContains:
			return "NOT (" + c + " @> " + p + ")", nil
		case opContainsNocase, opNotContainsNocase:
			// every given value equals, ignoring case, some element of the column
			s := "NOT EXISTS (SELECT 1 FROM unnest(" + p + ") v WHERE NOT EXISTS (SELECT 1 FROM unnest(" + c + ") el WHERE lower(el) = lower(v)))"
			if fk.op == opNotContainsNocase {
				s = "NOT " + s
			}
			return c + " IS NOT NULL AND " + s, nil
		}
		return "", errorf(codeBadFilter, "where: %s is not supported for a list", key)
	}

	switch fk.op {
	case opIn, opNotIn:
		p, err := q.listParam(f.Kind, v, key)
		if err != nil {
			return "", err
		}
		if fk.op == opIn {
			return c + " = ANY(" + p + ")", nil
		}
		return notNull("NOT (" + c + " = ANY(" + p + "))"), nil
	}

	if f.Kind == schema.KindBytes && (fk.op == opContains || fk.op == opNotContains) {
		p, err := q.scalarParam(f.Kind, v, key)
		if err != nil {
			return "", err
		}
		if fk.op == opContains {
			return "position(" + p + " in " + c + ") > 0", nil
		}
		return "position(" + p + " in " + c + ") = 0", nil
	}

	switch fk.op {
	case opEq, opNot, opGt, opLt, opGte, opLte:
		p, err := q.scalarParam(f.Kind, v, key)
		if err != nil {
			return "", err
		}
		lhs := c
		if textual(f) && fk.op != opEq && fk.op != opNot {
			lhs = c + q.collate
		}
		sym := map[op]string{opEq: " = ", opNot: " <> ", opGt: " > ", opLt: " < ", opGte: " >= ", opLte: " <= "}[fk.op]
		cond := lhs + sym + p
		return cond, nil
	}

	// String pattern operators.
	s, err := coerceString(v, "String")
	if err != nil {
		return "", errorf(codeBadFilter, "where: %s: %v", key, err)
	}
	esc := escapeLike(s)
	var pattern, like string
	negate := false
	switch fk.op {
	case opContains, opContainsNocase, opNotContains, opNotContainsNocase:
		pattern = "%" + esc + "%"
	case opStartsWith, opStartsWithNocase, opNotStartsWith, opNotStartsWithNocase:
		pattern = esc + "%"
	case opEndsWith, opEndsWithNocase, opNotEndsWith, opNotEndsWithNocase:
		pattern = "%" + esc
	default:
		return "", errorf(codeBadFilter, "where: %s is not supported", key)
	}
	switch fk.op {
	case opContainsNocase, opStartsWithNocase, opEndsWithNocase:
		like = " ILIKE "
	case opNotContains, opNotStartsWith, opNotEndsWith:
		like, negate = " LIKE ", true
	case opNotContainsNocase, opNotStartsWithNocase, opNotEndsWithNocase:
		like, negate = " ILIKE ", true
	default:
		like = " LIKE "
	}
	expr := c + like + q.param(pattern) + "::text"
	if negate {
		return notNull("NOT (" + expr + ")"), nil
	}
	return expr, nil
}

// escapeLike makes client text match literally inside a LIKE pattern.
func escapeLike(s string) string {
	if !strings.ContainsAny(s, `\%_`) {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// scalarParam turns one filter value into a typed parameter.
func (q *builder) scalarParam(k schema.Kind, v any, key string) (string, error) {
	bad := func(err error) (string, error) { return "", errorf(codeBadFilter, "where: %s: %v", key, err) }
	switch k {
	case schema.KindID, schema.KindString, schema.KindEntity:
		typ := "String"
		if k == schema.KindID {
			typ = "ID"
		}
		s, err := coerceString(v, typ)
		if err != nil {
			return bad(err)
		}
		return q.param(s) + "::text", nil
	case schema.KindInt:
		n, err := coerceInt32(v)
		if err != nil {
			return bad(err)
		}
		return q.param(n) + "::int4", nil
	case schema.KindInt8, schema.KindTimestamp:
		n, err := coerceInt64(v, k.String())
		if err != nil {
			return bad(err)
		}
		return q.param(n) + "::int8", nil
	case schema.KindBigInt:
		s, err := coerceBigInt(v)
		if err != nil {
			return bad(err)
		}
		return q.param(s) + "::text::numeric", nil
	case schema.KindBigDecimal:
		s, err := coerceBigDecimal(v)
		if err != nil {
			return bad(err)
		}
		return q.param(s) + "::text::numeric", nil
	case schema.KindBytes:
		b, err := coerceBytes(v)
		if err != nil {
			return bad(err)
		}
		return q.param(b) + "::bytea", nil
	case schema.KindBoolean:
		b, err := coerceBool(v)
		if err != nil {
			return bad(err)
		}
		return q.param(b) + "::bool", nil
	}
	return "", errorf(codeBadFilter, "where: %s: unsupported type %s", key, k)
}

// listParam turns a list filter value into one typed array parameter.
func (q *builder) listParam(k schema.Kind, v any, key string) (string, error) {
	items := asList(v)
	bad := func(err error) (string, error) { return "", errorf(codeBadFilter, "where: %s: %v", key, err) }
	for _, it := range items {
		if it == nil {
			return "", errorf(codeBadFilter, "where: %s: list elements must not be null", key)
		}
	}
	switch k {
	case schema.KindID, schema.KindString, schema.KindEntity, schema.KindBigInt, schema.KindBigDecimal:
		out := make([]string, len(items))
		for i, it := range items {
			var err error
			switch k {
			case schema.KindBigInt:
				out[i], err = coerceBigInt(it)
			case schema.KindBigDecimal:
				out[i], err = coerceBigDecimal(it)
			case schema.KindID:
				out[i], err = coerceString(it, "ID")
			default:
				out[i], err = coerceString(it, "String")
			}
			if err != nil {
				return bad(err)
			}
		}
		if k == schema.KindBigInt || k == schema.KindBigDecimal {
			return q.param(out) + "::text[]::numeric[]", nil
		}
		return q.param(out) + "::text[]", nil
	case schema.KindInt:
		out := make([]int32, len(items))
		for i, it := range items {
			n, err := coerceInt32(it)
			if err != nil {
				return bad(err)
			}
			out[i] = n
		}
		return q.param(out) + "::int4[]", nil
	case schema.KindInt8, schema.KindTimestamp:
		out := make([]int64, len(items))
		for i, it := range items {
			n, err := coerceInt64(it, k.String())
			if err != nil {
				return bad(err)
			}
			out[i] = n
		}
		return q.param(out) + "::int8[]", nil
	case schema.KindBytes:
		out := make([][]byte, len(items))
		for i, it := range items {
			b, err := coerceBytes(it)
			if err != nil {
				return bad(err)
			}
			out[i] = b
		}
		return q.param(out) + "::bytea[]", nil
	case schema.KindBoolean:
		out := make([]bool, len(items))
		for i, it := range items {
			b, err := coerceBool(it)
			if err != nil {
				return bad(err)
			}
			out[i] = b
		}
		return q.param(out) + "::bool[]", nil
	}
	return "", errorf(codeBadFilter, "where: %s: unsupported type %s", key, k)
}

// orderBy renders the ORDER BY clause; ties always break by id, in the same direction.
func (q *builder) orderBy(e *entity, alias string, by, dir *string) (string, error) {
	d := " ASC"
	if dir != nil {
		switch *dir {
		case "asc":
		case "desc":
			d = " DESC"
		default:
			return "", errorf(codeBadOrder, "orderDirection must be asc or desc, got %q", *dir)
		}
	}
	id := sortKeys(q.sortExprs(alias, e.Columns[0]), d)
	if by == nil || *by == "id" {
		return " ORDER BY " + id, nil
	}
	k, ok := e.orderKeys[*by]
	if !ok {
		return "", errorf(codeBadOrder, "orderBy: %s has no field %q", e.Name, *by)
	}
	if k.field.DerivedFrom != "" {
		return "", errorf(codeBadOrder, "orderBy: cannot order %s by the derived field %s", e.Name, *by)
	}
	if k.child == nil {
		return " ORDER BY " + sortKeys(q.sortExprs(alias, k.field), d) + ", " + id, nil
	}
	target := q.m.byName[k.field.Ref]
	x := q.alias()
	child := col(x, k.child)
	if textual(k.child) {
		child += q.collate
	}
	sub := "(SELECT " + child + " FROM " + target.table + " " + x +
		where(col(x, target.Columns[0])+" = "+col(alias, k.field), q.visible(target, x)) + " LIMIT 1)"
	return " ORDER BY " + sub + d + ", " + id, nil
}

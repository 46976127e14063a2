package schema

import (
	"strings"
	"testing"
)

func TestLoadEmbedded(t *testing.T) {
	s, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	ticket := s.Type("Ticket")
	if ticket == nil || ticket.Plural != "tickets" || ticket.Table != "ticket" || ticket.Immutable {
		t.Fatalf("Ticket parsed wrong: %+v", ticket)
	}
	if ticket.Columns[0].Name != "id" {
		t.Fatalf("first column is %s, want id", ticket.Columns[0].Name)
	}
	if f := ticket.Field("originalOwner"); f.Column != "original_owner" || f.SQLType() != "bytea" || !f.NonNull {
		t.Fatalf("originalOwner: %+v", f)
	}
	if f := ticket.Field("transfers"); f.Stored() || f.Ref != "Transfer" || f.DerivedFrom != "ticket" {
		t.Fatalf("transfers: %+v", f)
	}
	if !s.Type("Transfer").Immutable || s.Type("Attendance").Plural != "attendances" {
		t.Fatal("Transfer must be immutable, Attendance plural attendances")
	}
	if got := s.Type("Event").Field("usedAt"); got != nil {
		t.Fatal("Event has no usedAt")
	}
	if f := s.Type("Event").Field("createdAtBlock"); f.Column != "created_at_block" || f.SQLType() != "numeric" {
		t.Fatalf("createdAtBlock: %+v", f)
	}
}

// Every type and field of the published design schema must be served with the same type.
func TestDesignSchemaKept(t *testing.T) {
	design := map[string]map[string]string{
		"Event": {"id": "ID!", "creator": "Bytes!", "title": "String!", "description": "String!", "startTime": "BigInt!",
			"endTime": "BigInt!", "maxTickets": "BigInt!", "ticketPrice": "BigInt!", "ticketsSold": "BigInt!", "revenue": "BigInt!",
			"status": "String!", "category": "String!", "location": "String", "imageUrl": "String", "createdAt": "BigInt!",
			"updatedAt": "BigInt!", "tickets": "[Ticket!]!", "transactions": "[Transaction!]!"},
		"Ticket": {"id": "ID!", "event": "Event!", "tokenId": "BigInt!", "owner": "Bytes!", "originalOwner": "Bytes!",
			"ticketType": "String!", "price": "BigInt!", "purchasePrice": "BigInt!", "isUsed": "Boolean!", "usedAt": "BigInt",
			"createdAt": "BigInt!", "updatedAt": "BigInt!", "transfers": "[Transfer!]!"},
		"Transfer": {"id": "ID!", "ticket": "Ticket!", "from": "Bytes!", "to": "Bytes!", "transactionHash": "Bytes!",
			"blockNumber": "BigInt!", "timestamp": "BigInt!"},
		"Transaction": {"id": "ID!", "event": "Event", "ticket": "Ticket", "from": "Bytes!", "to": "Bytes!", "value": "BigInt!",
			"transactionType": "String!", "gasUsed": "BigInt!", "gasPrice": "BigInt!", "timestamp": "BigInt!", "blockNumber": "BigInt!"},
	}
	s, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for tn, fields := range design {
		typ := s.Type(tn)
		if typ == nil {
			t.Fatalf("type %s missing", tn)
		}
		for fn, want := range fields {
			f := typ.Field(fn)
			if f == nil {
				t.Errorf("%s.%s missing", tn, fn)
				continue
			}
			if got := f.GraphQLType(); got != want {
				t.Errorf("%s.%s is %s, design says %s", tn, fn, got, want)
			}
		}
	}
}

func TestParseErrorsNameFileLineReason(t *testing.T) {
	cases := map[string]struct{ src, want string }{
		"unknown type": {"type A @entity {\n  id: ID!\n  x: Foo\n}", "s.graphql:3: field x: unknown type Foo"},
		"no entity":    {"type A {\n  id: ID!\n}", "s.graphql:1: type A has no @entity"},
		"syntax":       {"type A @entity {\n  id: ID!\n  x: \n}", "s.graphql"},
		"bad derived":  {"type A @entity {\n  id: ID!\n  bs: [B!]! @derivedFrom(field: \"a\")\n}\ntype B @entity {\n  id: ID!\n}", "s.graphql:3: field A.bs"},
		"no id":        {"type A @entity {\n  x: String\n}", "needs a field id: ID!"},
	}
	for name, c := range cases {
		_, err := Parse("s.graphql", c.src)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want error containing %q", name, err, c.want)
		}
	}
}

package echain

import (
	"math/big"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/echain/echain-indexer/schema/entity"
)

// poapAttendance handles AttendanceMinted, the only POAPAttendance log that changes an entity.
// The contract does not check event ids, so an Attendance may name an event that does not
// exist: its event is then null.
func (a *applier) poapAttendance(l *types.Log) (change, error) {
	if l.Topics[0] != a.h.abi.attendanceMinted.ID {
		return change{}, nil
	}
	a.h.m.logs.WithLabelValues("AttendanceMinted").Inc()
	f := decode(a.h.abi.attendanceMinted, l)
	eventID, attendee, token := f.big("eventId"), f.addr("attendee"), f.big("tokenId")
	if f.err != nil {
		return change{}, f.err
	}
	ref, err := a.eventRef(eventID)
	if err != nil {
		return change{}, err
	}
	c := change{kind: txAttendanceMinted}
	if ref != nil {
		c.event = *ref
	}
	existing, err := entity.LoadAttendance(a.ctx, a.b, token.String())
	if err != nil {
		return change{}, err
	}
	if existing != nil { // immutable: the first one stays
		return c, nil
	}
	(&entity.Attendance{
		ID:              token.String(),
		Event:           ref,
		EventID:         eventID,
		Attendee:        addrBytes(attendee),
		TokenID:         token,
		Timestamp:       a.ts,
		TransactionHash: l.TxHash.Bytes(),
	}).Save(a.b)
	return c, nil
}

// eventRef is the id of the Event with that id, or nil when there is no such event.
func (a *applier) eventRef(id *big.Int) (*string, error) {
	ev, err := a.loadEvent(id.String())
	if err != nil || ev == nil {
		return nil, err
	}
	return &ev.ID, nil
}

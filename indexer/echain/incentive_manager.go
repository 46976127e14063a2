package echain

import (
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/echain/echain-indexer/schema/entity"
)

// incentiveManager handles RewardMinted and ReferralUsed. ReferralCodeGenerated changes no
// entity (and is not fetched).
func (a *applier) incentiveManager(l *types.Log) (change, error) {
	switch l.Topics[0] {
	case a.h.abi.rewardMinted.ID:
		return a.rewardMinted(l)
	case a.h.abi.referralUsed.ID:
		return a.referralUsed(l)
	}
	return change{}, nil
}

// rewardMinted records a Reward; loyalty rewards carry event id 0, which is no event.
func (a *applier) rewardMinted(l *types.Log) (change, error) {
	a.h.m.logs.WithLabelValues("RewardMinted").Inc()
	f := decode(a.h.abi.rewardMinted, l)
	id, user, kind, eventID := f.big("rewardId"), f.addr("user"), f.str("rewardType"), f.big("eventId")
	if f.err != nil {
		return change{}, f.err
	}
	ref, err := a.eventRef(eventID)
	if err != nil {
		return change{}, err
	}
	c := change{kind: txRewardMinted}
	if ref != nil {
		c.event = *ref
	}
	existing, err := entity.LoadReward(a.ctx, a.b, id.String())
	if err != nil {
		return change{}, err
	}
	if existing != nil { // immutable: the first one stays
		return c, nil
	}
	(&entity.Reward{
		ID:              id.String(),
		User:            addrBytes(user),
		RewardType:      kind,
		EventID:         eventID,
		Event:           ref,
		Timestamp:       a.ts,
		TransactionHash: l.TxHash.Bytes(),
	}).Save(a.b)
	return c, nil
}

// referralUsed records who referred the invitee. A Referral is immutable: when an invitee is
// seen again, the first stays (the log still counts as handled for its transaction).
func (a *applier) referralUsed(l *types.Log) (change, error) {
	a.h.m.logs.WithLabelValues("ReferralUsed").Inc()
	f := decode(a.h.abi.referralUsed, l)
	invitee, inviter := f.addr("invitee"), f.addr("inviter")
	if f.err != nil {
		return change{}, f.err
	}
	id := lowerHex(invitee)
	existing, err := entity.LoadReferral(a.ctx, a.b, id)
	if err != nil {
		return change{}, err
	}
	if existing == nil {
		(&entity.Referral{
			ID:              id,
			Inviter:         addrBytes(inviter),
			Timestamp:       a.ts,
			TransactionHash: l.TxHash.Bytes(),
		}).Save(a.b)
	}
	return change{kind: txOther}, nil
}

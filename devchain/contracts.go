package devchain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/echain/echain-indexer/abis"
)

// contracts holds the parsed build ABIs and creation code of our contracts.
type contracts struct {
	factory, ticket, market, poap, incentive, wallet abi.ABI
	code                                             map[string][]byte
	abis                                             map[string]abi.ABI
	topics                                           topics
}

// topics are the topic0 values of the logs the traffic model follows.
type topics struct {
	organizerVerified, organizerUnverified, eventCreated, eventStatusChanged, eventUpdated common.Hash
	transfer, ticketUsed, ticketRestricted, ticketMinted, ownershipTransferred             common.Hash
	ticketListed, ticketSold, listingCancelled                                             common.Hash
	attendanceMinted, rewardMinted, referralCodeGenerated, referralUsed                    common.Hash
}

func loadContracts() (contracts, error) {
	ct := contracts{code: map[string][]byte{}, abis: map[string]abi.ABI{}}
	for _, name := range []string{abis.EventFactory, abis.EventTicket, abis.Marketplace, abis.POAPAttendance,
		abis.IncentiveManager, abis.SmartWallet} {
		a, code, err := abis.Build(name)
		if err != nil {
			return contracts{}, fmt.Errorf("devchain: %w", err)
		}
		ct.abis[name], ct.code[name] = a, code
	}
	ct.factory, ct.ticket, ct.market = ct.abis[abis.EventFactory], ct.abis[abis.EventTicket], ct.abis[abis.Marketplace]
	ct.poap, ct.incentive, ct.wallet = ct.abis[abis.POAPAttendance], ct.abis[abis.IncentiveManager], ct.abis[abis.SmartWallet]
	id := func(a abi.ABI, name string) common.Hash { return a.Events[name].ID }
	ct.topics = topics{
		organizerVerified:     id(ct.factory, "OrganizerVerified"),
		organizerUnverified:   id(ct.factory, "OrganizerUnverified"),
		eventCreated:          id(ct.factory, "EventCreated"),
		eventStatusChanged:    id(ct.factory, "EventStatusChanged"),
		eventUpdated:          id(ct.factory, "EventUpdated"),
		transfer:              id(ct.ticket, "Transfer"),
		ticketUsed:            id(ct.ticket, "TicketUsed"),
		ticketRestricted:      id(ct.ticket, "TicketTransferRestricted"),
		ticketMinted:          id(ct.ticket, "TicketMinted"),
		ownershipTransferred:  id(ct.ticket, "OwnershipTransferred"),
		ticketListed:          id(ct.market, "TicketListed"),
		ticketSold:            id(ct.market, "TicketSold"),
		listingCancelled:      id(ct.market, "ListingCancelled"),
		attendanceMinted:      id(ct.poap, "AttendanceMinted"),
		rewardMinted:          id(ct.incentive, "RewardMinted"),
		referralCodeGenerated: id(ct.incentive, "ReferralCodeGenerated"),
		referralUsed:          id(ct.incentive, "ReferralUsed"),
	}
	return ct, nil
}

// creation returns the creation code of a contract with its ABI-encoded constructor arguments.
func (ct contracts) creation(name string, args ...any) ([]byte, error) {
	packed, err := ct.abis[name].Pack("", args...)
	if err != nil {
		return nil, fmt.Errorf("devchain: constructor of %s: %w", name, err)
	}
	return append(append([]byte(nil), ct.code[name]...), packed...), nil
}

// isWalletCreation tells whether a contract-creation input deploys a SmartWallet, and its owner.
func (ct contracts) isWalletCreation(input []byte) (common.Address, bool) {
	code := ct.code[abis.SmartWallet]
	if len(input) != len(code)+32 || !bytes.Equal(input[:len(code)], code) {
		return common.Address{}, false
	}
	return common.BytesToAddress(input[len(code):]), true
}

func mustPack(a abi.ABI, method string, args ...any) []byte {
	data, err := a.Pack(method, args...)
	if err != nil {
		// Arguments are built by this package from typed values: a mismatch is a bug here.
		panic(fmt.Sprintf("devchain: pack %s: %v", method, err))
	}
	return data
}

// call runs a view function at the latest block and unpacks its results.
func (c *Chain) call(ctx context.Context, a abi.ABI, to common.Address, method string, args ...any) ([]any, error) {
	data, err := a.Pack(method, args...)
	if err != nil {
		return nil, fmt.Errorf("devchain: pack %s: %w", method, err)
	}
	out, err := c.client.CallContract(ctx, ethereum.CallMsg{To: &to, Data: data}, nil)
	if err != nil {
		return nil, fmt.Errorf("devchain: call %s on %s: %w", method, to, c.decodeCallError(err))
	}
	res, err := a.Unpack(method, out)
	if err != nil {
		return nil, fmt.Errorf("devchain: unpack %s: %w", method, err)
	}
	return res, nil
}

// revertReason traces the transaction's block (debug_traceBlockByHash, callTracer) and decodes
// the revert data of the transaction: unlike a call at the parent block, this sees the effects of
// the transactions before it in the block.
func (c *Chain) revertReason(ctx context.Context, txHash common.Hash, block *big.Int) string {
	blk := c.eth.BlockChain().GetBlockByNumber(block.Uint64())
	if blk == nil {
		return "unknown (block gone)"
	}
	var results []struct {
		TxHash common.Hash `json:"txHash"`
		Result struct {
			Output hexutil.Bytes `json:"output"`
			Error  string        `json:"error"`
		} `json:"result"`
	}
	err := c.client.Client().CallContext(ctx, &results, "debug_traceBlockByHash", blk.Hash(), map[string]any{"tracer": "callTracer"})
	if err != nil {
		return "unknown (trace: " + err.Error() + ")"
	}
	for _, r := range results {
		if r.TxHash != txHash {
			continue
		}
		if name, ok := c.decodeRevertData(r.Result.Output); ok {
			return r.Result.Error + ": " + name
		}
		return r.Result.Error
	}
	return "unknown (transaction not traced)"
}

// decodeRevertData names an Error(string) or a custom error of our contracts.
func (c *Chain) decodeRevertData(data []byte) (string, bool) {
	if len(data) < 4 {
		return "", false
	}
	if reason, err := abi.UnpackRevert(data); err == nil {
		return reason, true
	}
	for _, a := range c.contract.abis {
		for name, e := range a.Errors {
			if !bytes.Equal(e.ID[:4], data[:4]) {
				continue
			}
			args, err := e.Inputs.Unpack(data[4:])
			if err != nil {
				return name, true
			}
			parts := make([]string, len(args))
			for i, v := range args {
				parts[i] = fmt.Sprint(v)
			}
			return fmt.Sprintf("%s(%s)", name, strings.Join(parts, ", ")), true
		}
	}
	return "", false
}

// decodeCallError names a custom error of our contracts when the revert data carries one.
func (c *Chain) decodeCallError(err error) error {
	var de rpc.DataError
	if !errors.As(err, &de) {
		return err
	}
	s, ok := de.ErrorData().(string)
	if !ok {
		return err
	}
	data, derr := hexutil.Decode(s)
	if derr != nil {
		return err
	}
	if name, ok := c.decodeRevertData(data); ok {
		return fmt.Errorf("%w: %s", err, name)
	}
	return err
}

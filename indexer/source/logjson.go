package source

import (
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// Logs are decoded by the scanner (scan.go) straight into types.Log: go-ethereum's own
// UnmarshalJSON re-parses every log and every field through further UnmarshalJSON calls, and
// encoding/json alone validates the answer in a pass of its own; on the large answers of a
// backfill that decoding was the indexer's largest cost.

var errLogField = errors.New("bad log field")

// logList is a JSON array of logs (eth_getLogs' answer).
type logList []types.Log

func (l *logList) UnmarshalJSON(b []byte) error {
	s := &scanner{b: b}
	logs, err := s.logs()
	if err != nil {
		return err
	}
	if err := s.end(); err != nil {
		return err
	}
	*l = logs
	return nil
}

// logs reads an array of logs (null: none).
func (s *scanner) logs() ([]types.Log, error) {
	if s.null() {
		return nil, nil
	}
	return s.logsInto(nil)
}

// logsInto appends the logs of an array to dst.
func (s *scanner) logsInto(dst []types.Log) ([]types.Log, error) {
	n := 0
	err := s.array(func() error {
		dst = append(dst, types.Log{})
		if err := s.log(&dst[len(dst)-1]); err != nil {
			return fmt.Errorf("log %d: %w", n, err)
		}
		n++
		return nil
	})
	return dst, err
}

// log reads one log object. Like go-ethereum it requires address, topics, data and
// transactionHash; the block and position fields may be absent (pending logs).
func (s *scanner) log(l *types.Log) error {
	var have struct{ address, topics, data, txHash bool }
	err := s.object(func(key []byte) error {
		switch string(key) {
		case "address":
			have.address = true
			return s.hexInto(l.Address[:], "address")
		case "topics":
			have.topics = true
			// Topics and data are cut from slabs the scanner shares among an answer's logs:
			// two allocations fewer per log.
			if cap(s.hashes)-len(s.hashes) < 4 {
				s.hashes = make([]common.Hash, 0, hashSlab)
			}
			start := len(s.hashes)
			err := s.array(func() error {
				s.hashes = append(s.hashes, common.Hash{})
				return s.hexInto(s.hashes[len(s.hashes)-1][:], "topic")
			})
			l.Topics = s.hashes[start:len(s.hashes):len(s.hashes)]
			return err
		case "data":
			raw, err := s.hexStr()
			if err != nil {
				return err
			}
			have.data = true
			l.Data, err = s.hexSlab(raw, "data")
			return err
		case "blockNumber":
			return s.optUint(&l.BlockNumber, "blockNumber")
		case "transactionHash":
			have.txHash = true
			return s.hexInto(l.TxHash[:], "transactionHash")
		case "transactionIndex":
			var n uint64
			err := s.optUint(&n, "transactionIndex")
			l.TxIndex = uint(n)
			return err
		case "blockHash":
			if s.null() {
				return nil
			}
			return s.hexInto(l.BlockHash[:], "blockHash")
		case "blockTimestamp":
			return s.optUint(&l.BlockTimestamp, "blockTimestamp")
		case "logIndex":
			var n uint64
			err := s.optUint(&n, "logIndex")
			l.Index = uint(n)
			return err
		case "removed":
			switch s.peek() {
			case 't':
				l.Removed = true
				return s.word("true")
			case 'f':
				l.Removed = false
				return s.word("false")
			}
			return s.fail("removed is not a boolean")
		default:
			return s.skip()
		}
	})
	if err != nil {
		return err
	}
	if !have.address || !have.topics || !have.data || !have.txHash {
		return fmt.Errorf("%w: log lacks address, topics, data or transactionHash", errLogField)
	}
	return nil
}

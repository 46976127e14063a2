package source

import (
	"math/big"

	"github.com/ethereum/go-ethereum/common"
)

// Tx is what the Transaction entity needs from a transaction and its receipt.
type Tx struct {
	Hash     common.Hash
	From     common.Address
	To       *common.Address // nil for a contract creation
	Value    *big.Int
	GasUsed  uint64
	GasPrice *big.Int // the receipt's effectiveGasPrice
	Input    []byte   // the calldata
}

// Package abis embeds the contract interfaces the indexer decodes with and the dev chain's
// compiled contracts.
//
//   - echain/<Name>.json: the ABIs of the real Echain contracts (what the indexer decodes logs and
//     calls with, for any chain).
//   - build/<Name>.abi.json and build/<Name>.bin: our own Solidity contracts (contracts/*.sol),
//     ABI-compatible with the real ones, compiled by contracts/build.sh (`make contracts`), which
//     the dev chain deploys.
//
// Every accessor parses afresh, so callers own what they get and nothing is shared.
package abis

import (
	"bytes"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
)

// Contract names, as used for file names in both sets.
const (
	EventFactory     = "EventFactory"
	EventTicket      = "EventTicket"
	Marketplace      = "Marketplace"
	POAPAttendance   = "POAPAttendance"
	IncentiveManager = "IncentiveManager"
	// SmartWallet is a dev-chain-only contract account (no Echain counterpart): it forwards calls
	// for its owner, so the indexer must read values from state rather than top-level calldata.
	SmartWallet = "SmartWallet"
)

//go:embed echain/*.json build/*.abi.json build/*.bin
var files embed.FS // read-only by construction

// EchainNames lists the real Echain contracts with an embedded ABI, sorted.
func EchainNames() []string { return names("echain", ".json") }

// BuildNames lists the compiled dev-chain contracts, sorted.
func BuildNames() []string { return names("build", ".abi.json") }

// EchainJSON returns the raw ABI JSON of a real Echain contract.
func EchainJSON(name string) ([]byte, error) {
	b, err := files.ReadFile("echain/" + name + ".json")
	if err != nil {
		return nil, fmt.Errorf("abis: no Echain ABI %q (have %s): %w", name, strings.Join(EchainNames(), ", "), err)
	}
	return b, nil
}

// Echain returns the parsed ABI of a real Echain contract (EventFactory, EventTicket, Marketplace,
// POAPAttendance, IncentiveManager).
func Echain(name string) (abi.ABI, error) {
	b, err := EchainJSON(name)
	if err != nil {
		return abi.ABI{}, err
	}
	a, err := abi.JSON(bytes.NewReader(b))
	if err != nil {
		return abi.ABI{}, fmt.Errorf("abis: parse Echain ABI %s: %w", name, err)
	}
	return a, nil
}

// Build returns the ABI and creation bytecode of one of our compiled dev-chain contracts.
func Build(name string) (abi.ABI, []byte, error) {
	j, err := files.ReadFile("build/" + name + ".abi.json")
	if err != nil {
		return abi.ABI{}, nil, fmt.Errorf("abis: no build ABI %q (have %s; run make contracts): %w",
			name, strings.Join(BuildNames(), ", "), err)
	}
	a, err := abi.JSON(bytes.NewReader(j))
	if err != nil {
		return abi.ABI{}, nil, fmt.Errorf("abis: parse build ABI %s: %w", name, err)
	}
	h, err := files.ReadFile("build/" + name + ".bin")
	if err != nil {
		return abi.ABI{}, nil, fmt.Errorf("abis: no bytecode for %s (run make contracts): %w", name, err)
	}
	code, err := hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(string(h)), "0x"))
	if err != nil {
		return abi.ABI{}, nil, fmt.Errorf("abis: bytecode of %s: %w", name, err)
	}
	if len(code) == 0 {
		return abi.ABI{}, nil, fmt.Errorf("abis: bytecode of %s is empty", name)
	}
	return a, code, nil
}

// MustEchain is Echain for the embedded names above, whose absence is a build defect.
func MustEchain(name string) abi.ABI {
	a, err := Echain(name)
	if err != nil {
		panic(err)
	}
	return a
}

func names(dir, suffix string) []string {
	entries, err := fs.ReadDir(files, dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), suffix); ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

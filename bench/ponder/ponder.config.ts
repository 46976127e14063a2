// Indexes the Echain contracts of one chain; everything chain-specific comes from the
// environment, so that BenchmarkBackfillGeth (indexer/geth_bench_test.go) can point it at its geth.
import { createConfig, factory } from "ponder";
import type { Abi, Address } from "viem";
import { getAbiItem } from "viem";

// The ABIs echain-indexer decodes with (one copy, in the repository's abis/echain).
import EventFactoryJson from "../../abis/echain/EventFactory.json";
import EventTicketJson from "../../abis/echain/EventTicket.json";
import MarketplaceJson from "../../abis/echain/Marketplace.json";
import POAPAttendanceJson from "../../abis/echain/POAPAttendance.json";
import IncentiveManagerJson from "../../abis/echain/IncentiveManager.json";

export const EventFactoryAbi = EventFactoryJson as Abi;
export const EventTicketAbi = EventTicketJson as Abi;

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (see bench/ponder/README.md)`);
  return v;
}

const chain = "echain";
const startBlock = Number(env("ECHAIN_PONDER_START_BLOCK"));
const endBlock = process.env.ECHAIN_PONDER_END_BLOCK ? Number(process.env.ECHAIN_PONDER_END_BLOCK) : undefined;
const factoryAddress = env("ECHAIN_PONDER_EVENT_FACTORY") as Address;
const at = { chain, startBlock, endBlock } as const;

export default createConfig({
  database: { kind: "postgres", connectionString: env("DATABASE_URL") },
  chains: {
    [chain]: {
      id: Number(env("ECHAIN_PONDER_CHAIN_ID")),
      rpc: env("ECHAIN_PONDER_RPC"),
      // No rate limit: the node is local, as for the indexer.
      maxRequestsPerSecond: 100_000,
      pollingInterval: 1_000,
    },
  },
  contracts: {
    EventFactory: {
      ...at,
      abi: EventFactoryAbi,
      address: factoryAddress,
      // Transaction.gasUsed and gasPrice are the receipt's.
      includeTransactionReceipts: true,
    },
    // One EIP-1167 clone per event, learned from EventCreated.ticketContract.
    EventTicket: {
      ...at,
      abi: EventTicketAbi,
      address: factory({
        address: factoryAddress,
        event: getAbiItem({ abi: EventFactoryAbi, name: "EventCreated" }) as any,
        parameter: "ticketContract",
      }),
      includeTransactionReceipts: true,
    },
    Marketplace: {
      ...at,
      abi: MarketplaceJson as Abi,
      address: env("ECHAIN_PONDER_MARKETPLACE") as Address,
      includeTransactionReceipts: true,
    },
    POAPAttendance: {
      ...at,
      abi: POAPAttendanceJson as Abi,
      address: env("ECHAIN_PONDER_POAP_ATTENDANCE") as Address,
      includeTransactionReceipts: true,
    },
    IncentiveManager: {
      ...at,
      abi: IncentiveManagerJson as Abi,
      address: env("ECHAIN_PONDER_INCENTIVE_MANAGER") as Address,
      includeTransactionReceipts: true,
    },
  },
});

// The entities of echain-indexer's schema/schema.graphql, with the same fields, as Ponder
// tables. Ponder keeps current rows only (no versions); @derivedFrom fields are relations, and
// a reference field's relation is named <field>Ref (the column keeps the field's name).
import { index, onchainTable, relations } from "ponder";

export const event = onchainTable(
  "event",
  (t) => ({
    id: t.text().primaryKey(),
    creator: t.hex().notNull(),
    organizer: t.text().notNull(),
    title: t.text().notNull(),
    metadataUri: t.text().notNull(),
    description: t.text().notNull(),
    category: t.text().notNull(),
    location: t.text(),
    imageUrl: t.text(),
    ticketContract: t.hex().notNull(),
    startTime: t.bigint().notNull(),
    endTime: t.bigint().notNull(),
    maxTickets: t.bigint().notNull(),
    ticketPrice: t.bigint().notNull(),
    ticketsSold: t.bigint().notNull(),
    ticketsUsed: t.bigint().notNull(),
    revenue: t.bigint().notNull(),
    status: t.text().notNull(),
    createdAt: t.bigint().notNull(),
    createdAtBlock: t.bigint().notNull(),
    updatedAt: t.bigint().notNull(),
  }),
  (t) => ({
    organizerIdx: index().on(t.organizer, t.createdAt),
    startTimeIdx: index().on(t.startTime),
  }),
);

export const ticket = onchainTable(
  "ticket",
  (t) => ({
    id: t.text().primaryKey(),
    event: t.text().notNull(),
    contract: t.hex().notNull(),
    tokenId: t.bigint().notNull(),
    owner: t.hex().notNull(),
    originalOwner: t.hex().notNull(),
    seatNumber: t.bigint().notNull(),
    tier: t.bigint().notNull(),
    ticketType: t.text().notNull(),
    price: t.bigint().notNull(),
    purchasePrice: t.bigint().notNull(),
    isUsed: t.boolean().notNull(),
    usedAt: t.bigint(),
    transferRestricted: t.boolean().notNull(),
    burned: t.boolean().notNull(),
    createdAt: t.bigint().notNull(),
    updatedAt: t.bigint().notNull(),
  }),
  (t) => ({
    eventIdx: index().on(t.event, t.tokenId),
    ownerIdx: index().on(t.owner, t.createdAt),
  }),
);

export const transfer = onchainTable(
  "transfer",
  (t) => ({
    id: t.text().primaryKey(),
    ticket: t.text().notNull(),
    from: t.hex().notNull(),
    to: t.hex().notNull(),
    transactionHash: t.hex().notNull(),
    blockNumber: t.bigint().notNull(),
    timestamp: t.bigint().notNull(),
  }),
  (t) => ({ ticketIdx: index().on(t.ticket, t.timestamp) }),
);

export const transaction = onchainTable("transaction", (t) => ({
  id: t.hex().primaryKey(),
  event: t.text(),
  ticket: t.text(),
  from: t.hex().notNull(),
  to: t.hex().notNull(),
  value: t.bigint().notNull(),
  transactionType: t.text().notNull(),
  gasUsed: t.bigint().notNull(),
  gasPrice: t.bigint().notNull(),
  timestamp: t.bigint().notNull(),
  blockNumber: t.bigint().notNull(),
}));

export const organizer = onchainTable("organizer", (t) => ({
  id: t.text().primaryKey(),
  verified: t.boolean().notNull(),
  eventsCreated: t.bigint().notNull(),
  updatedAt: t.bigint().notNull(),
}));

export const listing = onchainTable(
  "listing",
  (t) => ({
    id: t.hex().primaryKey(),
    ticket: t.text().notNull(),
    event: t.text().notNull(),
    seller: t.hex().notNull(),
    price: t.bigint().notNull(),
    status: t.text().notNull(),
    buyer: t.hex(),
    marketplaceFee: t.bigint(),
    createdAt: t.bigint().notNull(),
    updatedAt: t.bigint().notNull(),
  }),
  (t) => ({ eventIdx: index().on(t.event, t.price) }),
);

export const attendance = onchainTable("attendance", (t) => ({
  id: t.text().primaryKey(),
  event: t.text(),
  eventId: t.bigint().notNull(),
  attendee: t.hex().notNull(),
  tokenId: t.bigint().notNull(),
  timestamp: t.bigint().notNull(),
  transactionHash: t.hex().notNull(),
}));

export const reward = onchainTable("reward", (t) => ({
  id: t.text().primaryKey(),
  user: t.hex().notNull(),
  rewardType: t.text().notNull(),
  eventId: t.bigint().notNull(),
  event: t.text(),
  timestamp: t.bigint().notNull(),
  transactionHash: t.hex().notNull(),
}));

export const referral = onchainTable("referral", (t) => ({
  id: t.text().primaryKey(),
  inviter: t.hex().notNull(),
  timestamp: t.bigint().notNull(),
  transactionHash: t.hex().notNull(),
}));

// Not an entity: which event a ticket clone belongs to (Transfer, TicketUsed and
// TicketListed do not carry the event id). echain-indexer keeps the same map as its data sources.
export const ticketContract = onchainTable("ticket_contract", (t) => ({
  address: t.hex().primaryKey(),
  eventId: t.text().notNull(),
}));

export const eventRelations = relations(event, ({ one, many }) => ({
  organizerRef: one(organizer, { fields: [event.organizer], references: [organizer.id] }),
  tickets: many(ticket),
  transactions: many(transaction),
  listings: many(listing),
  attendances: many(attendance),
}));
export const organizerRelations = relations(organizer, ({ many }) => ({ events: many(event) }));
export const ticketRelations = relations(ticket, ({ one, many }) => ({
  eventRef: one(event, { fields: [ticket.event], references: [event.id] }),
  transfers: many(transfer),
}));
export const transferRelations = relations(transfer, ({ one }) => ({
  ticketRef: one(ticket, { fields: [transfer.ticket], references: [ticket.id] }),
}));
export const transactionRelations = relations(transaction, ({ one }) => ({
  eventRef: one(event, { fields: [transaction.event], references: [event.id] }),
  ticketRef: one(ticket, { fields: [transaction.ticket], references: [ticket.id] }),
}));
export const listingRelations = relations(listing, ({ one }) => ({
  eventRef: one(event, { fields: [listing.event], references: [event.id] }),
  ticketRef: one(ticket, { fields: [listing.ticket], references: [ticket.id] }),
}));
export const attendanceRelations = relations(attendance, ({ one }) => ({
  eventRef: one(event, { fields: [attendance.event], references: [event.id] }),
}));
export const rewardRelations = relations(reward, ({ one }) => ({
  eventRef: one(event, { fields: [reward.event], references: [event.id] }),
}));

// Package echain is the Echain implementation of indexer.Handler: the rules of SPEC.md that turn
// the contracts' logs into entities. Where a log becomes a row:
//
//	event_factory.go      EventCreated, EventUpdated, EventStatusChanged, OrganizerVerified/Unverified → Event, Organizer
//	event_ticket.go       a clone's Transfer, TicketMinted, TicketUsed, TicketTransferRestricted → Transfer, Ticket, Event counters
//	marketplace.go        TicketListed, TicketSold, ListingCancelled → Listing, Ticket.purchasePrice
//	poap_attendance.go    AttendanceMinted → Attendance
//	incentive_manager.go  RewardMinted, ReferralUsed → Reward, Referral
//	transaction.go        one Transaction per transaction with a changing log; transactionType priority
//	handler.go            Config, New, Contracts/Templates/Discover, Prepare/Apply and the dispatch
//	event_details.go      Prepare's getEventDetails calls and their fallbacks
//	metadata.go           metadata documents fetched in the background (gateway, retries, host back-off, final rule)
//	metadata_fill.go      WriteLate/Reverted: documents written as new versions when they arrive
//	abi.go, metrics.go    decoding with the real ABIs (package abis); the mappings' metrics
//	ethclient.go          Chain over an *ethclient.Client (the indexer uses *source.Source)
//
// Choices SPEC.md leaves open, made here (and mirrored by the oracle in echaintest):
//
//   - A log "changes" an entity when it is one of the events above and what it names exists: an
//     EventUpdated/EventStatusChanged of an unknown event, a TicketListed of a token that is not
//     an Echain ticket (the Marketplace takes any ERC-721) and a TicketSold/ListingCancelled of
//     such a listing change nothing and make no Transaction. A second ReferralUsed of an
//     invitee, a second AttendanceMinted or RewardMinted of an id, keep the first entity but
//     still count as handled (transactionType "other" / "attendance_minted" / "reward_minted").
//   - updatedAt moves for the logs a rule names for that entity: Event on EventCreated,
//     EventUpdated, EventStatusChanged, TicketMinted and TicketUsed; Ticket on its Transfers
//     after the mint, TicketUsed, TicketTransferRestricted and TicketSold; Organizer on
//     EventCreated and (un)verification; Listing on its three logs.
//   - Transaction.event is the first existing Event a changing log refers to (a POAP or reward
//     of no event refers to none); Transaction.ticket is the first ticket id referred to, which
//     for a mint's Transfer is the ticket its TicketMinted creates a log later.
//   - Transaction.to of a contract creation is empty bytes ("0x").
//   - An EventUpdated whose document cannot be had keeps description, category, location and
//     imageUrl when the URI did not change (they were read from that same document), and resets
//     them to the defaults when it did (they would describe a document the event no longer
//     points at).
//   - When getEventDetails at the creation block is unavailable and the transaction did not
//     call the factory directly, the latest state supplies startTime and endTime (exact) and
//     metadataURI (the creation's, unless the event was updated since; the update replaces it).
//   - A log that does not match its event's ABI is skipped and counted, never fatal: retrying
//     cannot change it.
package echain

package subscriptions

import "encoding/json"

// Subprotocols, chosen by Sec-WebSocket-Protocol.
const (
	// ProtoTransportWS is graphql-ws's protocol (the `graphql-ws` npm library, Apollo Client 3/4
	// GraphQLWsLink): https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md
	ProtoTransportWS = "graphql-transport-ws"
	// ProtoLegacyWS is the older subscriptions-transport-ws protocol (Apollo's WebSocketLink),
	// confusingly named `graphql-ws` on the wire.
	ProtoLegacyWS = "graphql-ws"
)

// Close codes. 4xxx are graphql-ws's (PROTOCOL.md); the 1xxx are RFC 6455's.
const (
	CloseNormal             = 1000
	CloseGoingAway          = 1001 // server shutting down: clients reconnect
	CloseTryAgainLater      = 1013 // too many connections, or the client read too slowly
	CloseInternalError      = 4500
	CloseBadRequest         = 4400 // invalid or unexpected message
	CloseUnauthorized       = 4401 // subscribe before connection_ack
	CloseForbidden          = 4403 // Options.Authorize refused connection_init
	CloseSubprotocol        = 4406 // no supported subprotocol offered
	CloseInitTimeout        = 4408 // no connection_init within Options.InitTimeout
	CloseSubscriberExists   = 4409 // subscribe with an id still in use
	CloseTooManyInitRequest = 4429 // connection_init sent twice
)

// Message types of both protocols.
const (
	msgConnectionInit      = "connection_init"
	msgConnectionAck       = "connection_ack"
	msgPing                = "ping"
	msgPong                = "pong"
	msgSubscribe           = "subscribe"
	msgNext                = "next"
	msgError               = "error"
	msgComplete            = "complete"
	msgStart               = "start"                // legacy subscribe
	msgStop                = "stop"                 // legacy complete (client)
	msgData                = "data"                 // legacy next
	msgKeepAlive           = "ka"                   // legacy keep-alive
	msgConnectionError     = "connection_error"     // legacy refusal of connection_init
	msgConnectionTerminate = "connection_terminate" // legacy client goodbye
)

// inMessage is a client message of either protocol.
type inMessage struct {
	ID      *string         `json:"id"`
	Type    *string         `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

// subscribePayload is the payload of subscribe (and legacy start).
type subscribePayload struct {
	Query         *string         `json:"query"`
	OperationName *string         `json:"operationName"`
	Variables     json.RawMessage `json:"variables"`
	Extensions    json.RawMessage `json:"extensions"`
}

// wireError is a GraphQL error as both protocols send it.
type wireError struct {
	Message    string         `json:"message"`
	Locations  []wireLocation `json:"locations,omitempty"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

type wireLocation struct {
	Line   int `json:"line"`
	Column int `json:"column"`
}

func errorsPayload(errs []*requestError) []byte {
	out := make([]wireError, len(errs))
	for i, e := range errs {
		out[i] = wireError{Message: e.msg, Extensions: map[string]any{"code": e.code}}
		for _, l := range e.loc {
			out[i].Locations = append(out[i].Locations, wireLocation{Line: l.Line, Column: l.Column})
		}
	}
	b, _ := json.Marshal(out)
	return b
}

// encode renders {"id":..,"type":..,"payload":..}; id and payload are left out when empty.
func encode(typ, id string, payload []byte) []byte {
	b := make([]byte, 0, len(payload)+len(id)+len(typ)+40)
	b = append(b, '{')
	if id != "" {
		b = append(b, `"id":`...)
		q, _ := json.Marshal(id) // JSON escaping, not Go's
		b = append(b, q...)
		b = append(b, ',')
	}
	b = append(b, `"type":"`...)
	b = append(b, typ...)
	b = append(b, '"')
	if len(payload) > 0 {
		b = append(b, `,"payload":`...)
		b = append(b, payload...)
	}
	return append(b, '}')
}

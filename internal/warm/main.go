package main

import (
	_ "github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	_ "github.com/ethereum/go-ethereum/ethclient"
	_ "github.com/ethereum/go-ethereum/ethclient/simulated"
	_ "github.com/ethereum/go-ethereum/rpc"
	_ "github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/graph-gophers/graphql-go"
	_ "github.com/gorilla/websocket"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/spf13/viper"
	_ "github.com/spf13/cobra"
	_ "github.com/vektah/gqlparser/v2"
)

func main() {}

# kafka_write_config DIR LISTEN_HOST PORT ADVERTISED_HOST ADVERTISED_PORT CONTROLLER_PORT
#                    DATA_DIR LOG_LEVEL
# Writes a single-node KRaft broker's server.properties and log4j2.yaml into DIR. POSIX
# sh: sourced by the test scripts (scripts/lib.sh) and by the demo image's start script.
kafka_write_config() {
  cat >"$1/server.properties" <<CFG
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$6
listeners=PLAINTEXT://$2:$3,CONTROLLER://127.0.0.1:$6
advertised.listeners=PLAINTEXT://$4:$5
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$7
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
CFG
  cat >"$1/log4j2.yaml" <<CFG
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: $8
      AppenderRef:
        - ref: STDOUT
CFG
}

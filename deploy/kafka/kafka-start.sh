#!/bin/sh
# The demo's Kafka broker (image dspy-test/kafka, scripts/build-images.sh): a single
# KRaft node that is broker and controller. PORT (9092) is the client listener inside
# the container; clients on the host reach it on ADVERTISED_HOST:ADVERTISED_PORT
# (127.0.0.1 and PORT: the port env-manager publishes). Data in /var/lib/kafka/data (a
# volume): formatted on the first start, kept afterwards.
set -e
PORT="${PORT:-9092}"
ADVERTISED_HOST="${ADVERTISED_HOST:-127.0.0.1}"
ADVERTISED_PORT="${ADVERTISED_PORT:-$PORT}"
DATA=/var/lib/kafka/data
mkdir -p "$DATA" /tmp
. /kafka-config.sh
kafka_write_config /tmp 0.0.0.0 "$PORT" "$ADVERTISED_HOST" "$ADVERTISED_PORT" 9093 "$DATA" WARN
JAVA_OPTS="-Xms128m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true -Dlog4j2.configurationFile=/tmp/log4j2.yaml"
if [ ! -f "$DATA/meta.properties" ]; then
  # A fixed cluster id (base64 of "dspy-agent-kafka"): one node, one cluster.
  java $JAVA_OPTS -cp '/opt/kafka/libs/*' kafka.tools.StorageTool format --config /tmp/server.properties \
    --cluster-id ZHNweS1hZ2VudC1rYWZrYQ --standalone
fi
echo "kafka: starting the broker on $PORT (advertised $ADVERTISED_HOST:$ADVERTISED_PORT)"
exec java $JAVA_OPTS -cp '/opt/kafka/libs/*' kafka.Kafka /tmp/server.properties

# Shared by scripts/bench and scripts/bench-ab (sourced). Expects: work, port, auth_port,
# queue, database; service_bin (the notice-service binary) and beam (the broker's pid).
service=""

stop_service() {
    if [ -n "$service" ]; then
        kill "$service" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$service" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$service" 2>/dev/null || true
        wait "$service" 2>/dev/null || true
        service=""
    fi
}
# start_service sqlite|postgres
start_service() {
    local db
    case "$1" in
        sqlite) db="sqlite:$work/notice.sqlite" ;;
        postgres) db="postgres://notice:notice@127.0.0.1:5432/$database" ;;
    esac
    env NOTICE_HTTP_PORT=$port NOTICE_DB_URL="$db" NOTICE_AMQP_QUEUE="$queue" \
        NOTICE_AMQP_EXCHANGE="bench.notice.direct" NOTICE_LOG_LEVEL=warning \
        NOTICE_ALLOWED_ORIGINS="ws://127.0.0.1" NOTICE_MAX_SESSIONS_PER_USER=100000 \
        NOTICE_INTROSPECTION_URL="http://127.0.0.1:$auth_port/introspect" \
        "$service_bin" serve >> "$work/service.log" 2>&1 &
    service=$!
    for _ in $(seq 1 300); do
        curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null && return 0
        kill -0 "$service" 2>/dev/null || break
        sleep 0.1
    done
    echo "bench: the service did not become ready" >&2
    return 1
}

# quiesce: waits (at most 60 s) until the broker has used less than 0.3 s of CPU in each of two
# consecutive seconds; closing 10k Web-STOMP sessions makes it delete 10k queues, which would
# otherwise land in the next measurement.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
quiesce() {
    local quiet=0 before after
    for _ in $(seq 1 60); do
        before=$(cpu_ticks "$beam"); sleep 1; after=$(cpu_ticks "$beam")
        if [ $((after - before)) -lt 30 ]; then quiet=$((quiet + 1)); else quiet=0; fi
        [ "$quiet" -ge 2 ] && return 0
    done
}


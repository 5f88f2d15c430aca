#ifndef NOTICE_CRABBITMQ_SHIM_H
#define NOTICE_CRABBITMQ_SHIM_H

// Debian's rabbitmq-c 0.11 installs flat headers; upstream >= 0.12 uses <rabbitmq-c/...>.
#if __has_include(<rabbitmq-c/amqp.h>)
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/tcp_socket.h>
#else
#include <amqp.h>
#include <amqp_tcp_socket.h>
#endif

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <unistd.h>

// Swift cannot call C variadic functions: amqp_login_with_properties with SASL PLAIN.
static inline amqp_rpc_reply_t notice_amqp_login_plain(amqp_connection_state_t state, const char *vhost,
                                                       int channel_max, int frame_max, int heartbeat,
                                                       const amqp_table_t *properties, const char *user,
                                                       const char *password) {
  return amqp_login_with_properties(state, vhost, channel_max, frame_max, heartbeat, properties,
                                    AMQP_SASL_METHOD_PLAIN, user, password);
}

// Method ids are macros with casts, which Swift does not import.
static inline amqp_method_number_t notice_amqp_basic_deliver_method(void) { return AMQP_BASIC_DELIVER_METHOD; }
static inline amqp_method_number_t notice_amqp_basic_ack_method(void) { return AMQP_BASIC_ACK_METHOD; }
static inline amqp_method_number_t notice_amqp_basic_nack_method(void) { return AMQP_BASIC_NACK_METHOD; }
static inline amqp_method_number_t notice_amqp_basic_return_method(void) { return AMQP_BASIC_RETURN_METHOD; }
static inline amqp_method_number_t notice_amqp_basic_cancel_method(void) { return AMQP_BASIC_CANCEL_METHOD; }
static inline amqp_method_number_t notice_amqp_channel_close_method(void) { return AMQP_CHANNEL_CLOSE_METHOD; }
static inline amqp_method_number_t notice_amqp_connection_close_method(void) { return AMQP_CONNECTION_CLOSE_METHOD; }
static inline amqp_method_number_t notice_amqp_connection_close_ok_method(void) { return AMQP_CONNECTION_CLOSE_OK_METHOD; }
static inline amqp_method_number_t notice_amqp_connection_blocked_method(void) { return AMQP_CONNECTION_BLOCKED_METHOD; }
static inline amqp_method_number_t notice_amqp_connection_unblocked_method(void) { return AMQP_CONNECTION_UNBLOCKED_METHOD; }

#endif

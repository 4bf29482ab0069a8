// The socket side of the half-open TCP prober (src/probe/syn.ts): SYNs leave a raw socket in
// sendmmsg batches; SYN-ACKs, RSTs and ICMP errors quoting our SYNs come back through raw sockets
// whose classic BPF filters pass only packets for our reserved port, so the node's other TCP traffic
// never reaches user space. A reply is matched without per-connection state: our sequence number is
// a keyed hash (SipHash-2-4) of the 4-tuple, as ZMap does, and an answer must acknowledge it.
// Node cannot hand setsockopt the pointer that SO_ATTACH_FILTER needs, hence this addon.
#define _GNU_SOURCE /* sendmmsg, recvmmsg, in6_pktinfo */
#define NAPI_VERSION 8
#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define BATCH 64          /* SYNs per sendmmsg, replies per recvmmsg */
#define SYN_LEN 24        /* TCP header with one option: MSS */
#define PACKET_MAX 128    /* enough of a reply: IP header, ICMP header, quoted IP and TCP headers */
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

/* What receive() reports per answer, besides negative errno values for ICMP errors. */
#define ANSWER_OPEN 1     /* SYN-ACK */
#define ANSWER_REFUSED 2  /* RST */

enum { TCP4, TCP6, ICMP4, RAW_SOCKETS };

typedef struct {
  int count;
  struct mmsghdr msg[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_in6 to[BATCH]; /* large enough for either family */
  uint8_t packet[BATCH][SYN_LEN];
  double key[BATCH];
} send_queue;

/* Source addresses by destination, for one family: open addressing, at most half full. An entry's
 * state is 0 (empty), 1 (local holds the source) or -errno (the route look-up failed). */
typedef struct {
  uint8_t *entries;
  size_t capacity, count;  /* capacity a power of two, or 0 before the first entry */
  size_t address_len;      /* 4 or 16 */
} route_cache;

typedef struct {
  napi_env env;
  napi_ref on_readable;
  napi_async_context async;
  int reserve_fd;          /* TCP socket bound to our port and never listening: no one else gets the port */
  int raw[RAW_SOCKETS];
  int route[2];            /* UDP sockets: connect() then getsockname() names the source address */
  int route_events;        /* rtnetlink socket told of every route, address, rule and link change; -1: no cache */
  route_cache routes[2];   /* by family: 0 IPv4, 1 IPv6 */
  struct timespec routes_since; /* when the caches were last emptied */
  uint16_t port;           /* network order */
  uint64_t key[2];
  uv_poll_t poll[RAW_SOCKETS];
  int refs;                /* the JS handle plus each poll handle not yet closed */
  int polling;             /* the poll handles exist (open() got that far) */
  int closed;
  send_queue out[2];
  double packets_read, answers;
} prober;

typedef struct {
  uint8_t family; /* 4 or 6 */
  uint8_t remote[16], local[16];
  uint16_t remote_port, local_port; /* network order */
} tuple;

/* ---- SipHash-2-4 (Aumasson, Bernstein) ---- */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND \
  do { \
    v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
    v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2; \
    v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0; \
    v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
  } while (0)

static uint64_t siphash(const uint64_t key[2], const uint8_t *in, size_t len) {
  uint64_t v0 = 0x736f6d6570736575ULL ^ key[0], v1 = 0x646f72616e646f6dULL ^ key[1];
  uint64_t v2 = 0x6c7967656e657261ULL ^ key[0], v3 = 0x7465646279746573ULL ^ key[1];
  uint64_t b = (uint64_t)len << 56, m;
  size_t i, tail = len & 7;
  for (i = 0; i + 8 <= len; i += 8) {
    memcpy(&m, in + i, 8); /* little-endian hosts only, as Linux on x86-64 and arm64 */
    v3 ^= m; SIPROUND; SIPROUND; v0 ^= m;
  }
  for (size_t j = 0; j < tail; j++) b |= (uint64_t)in[i + j] << (8 * j);
  v3 ^= b; SIPROUND; SIPROUND; v0 ^= b;
  v2 ^= 0xff; SIPROUND; SIPROUND; SIPROUND; SIPROUND;
  return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t tuple_hash(const prober *p, const tuple *t) {
  uint8_t buf[1 + 2 * (16 + 2)];
  size_t n = 0, len = t->family == 4 ? 4 : 16;
  buf[n++] = t->family;
  memcpy(buf + n, t->remote, len); n += len;
  memcpy(buf + n, &t->remote_port, 2); n += 2;
  memcpy(buf + n, t->local, len); n += len;
  memcpy(buf + n, &t->local_port, 2); n += 2;
  return siphash(p->key, buf, n);
}

/* The probe's name for JS: the sequence number in the low 32 bits, 21 more bits of the hash above them
 * (a double holds 53), so that two targets in flight whose sequence numbers collide stay apart. */
static double js_key(uint64_t hash) { return (double)(hash & ((1ULL << 53) - 1)); }

static uint32_t get32(const uint8_t *b) { return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]; }

/* ---- packets ---- */
static uint32_t sum16(const uint8_t *b, size_t len, uint32_t sum) {
  for (size_t i = 0; i + 1 < len; i += 2) sum += (uint32_t)b[i] << 8 | b[i + 1];
  return sum;
}

static void build_syn(uint8_t *tcp, const tuple *t, uint32_t seq) {
  memset(tcp, 0, SYN_LEN);
  memcpy(tcp, &t->local_port, 2);
  memcpy(tcp + 2, &t->remote_port, 2);
  tcp[4] = seq >> 24; tcp[5] = seq >> 16; tcp[6] = seq >> 8; tcp[7] = seq;
  tcp[12] = (SYN_LEN / 4) << 4;
  tcp[13] = TCP_SYN;
  tcp[14] = 64240 >> 8; tcp[15] = 64240 & 0xff; /* window, as Linux offers */
  tcp[20] = 2; tcp[21] = 4; tcp[22] = 1460 >> 8; tcp[23] = 1460 & 0xff; /* MSS */
  /* The checksum covers the pseudo-header: both addresses, the protocol and the TCP length. */
  size_t len = t->family == 4 ? 4 : 16;
  uint32_t sum = sum16(t->local, len, 0);
  sum = sum16(t->remote, len, sum);
  sum += IPPROTO_TCP + SYN_LEN;
  sum = sum16(tcp, SYN_LEN, sum);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  tcp[16] = (~sum >> 8) & 0xff;
  tcp[17] = ~sum & 0xff;
}

/* ---- BPF filters: our port, and only what can answer a SYN ---- */
#define STMT(code, k) BPF_STMT(code, k)
#define JUMP(code, k, jt, jf) BPF_JUMP(code, k, jt, jf)
#define ACCEPT STMT(BPF_RET | BPF_K, 0xffff)
#define DROP STMT(BPF_RET | BPF_K, 0)

static int attach(int fd, struct sock_filter *code, unsigned short length) {
  struct sock_fprog prog = { length, code };
  return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
}

/* IPv4 raw sockets see the IP header. */
static int filter_tcp4(int fd, uint16_t port) {
  struct sock_filter code[] = {
    STMT(BPF_LD | BPF_H | BPF_ABS, 6),             /* fragment offset: only first fragments */
    JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, 8, 0),
    STMT(BPF_LDX | BPF_B | BPF_MSH, 0),            /* X = IP header length */
    STMT(BPF_LD | BPF_H | BPF_IND, 2),             /* TCP destination port */
    JUMP(BPF_JMP | BPF_JEQ | BPF_K, port, 0, 5),
    STMT(BPF_LD | BPF_B | BPF_IND, 13),            /* TCP flags */
    JUMP(BPF_JMP | BPF_JSET | BPF_K, TCP_RST, 2, 0),
    STMT(BPF_ALU | BPF_AND | BPF_K, TCP_SYN | TCP_ACK),
    JUMP(BPF_JMP | BPF_JEQ | BPF_K, TCP_SYN | TCP_ACK, 0, 1),
    ACCEPT,
    DROP,
  };
  return attach(fd, code, sizeof(code) / sizeof(code[0]));
}

/* IPv6 raw sockets see no IP header: the TCP header is at 0. */
static int filter_tcp6(int fd, uint16_t port) {
  struct sock_filter code[] = {
    STMT(BPF_LD | BPF_H | BPF_ABS, 2),
    JUMP(BPF_JMP | BPF_JEQ | BPF_K, port, 0, 5),
    STMT(BPF_LD | BPF_B | BPF_ABS, 13),
    JUMP(BPF_JMP | BPF_JSET | BPF_K, TCP_RST, 2, 0),
    STMT(BPF_ALU | BPF_AND | BPF_K, TCP_SYN | TCP_ACK),
    JUMP(BPF_JMP | BPF_JEQ | BPF_K, TCP_SYN | TCP_ACK, 0, 1),
    ACCEPT,
    DROP,
  };
  return attach(fd, code, sizeof(code) / sizeof(code[0]));
}

/* ICMP destination unreachable, time exceeded or parameter problem, quoting a TCP segment from our
 * port. The quoted IP header is our own SYN's, which carries no options: its TCP header is at +20. */
static int filter_icmp4(int fd, uint16_t port) {
  struct sock_filter code[] = {
    STMT(BPF_LDX | BPF_B | BPF_MSH, 0),
    STMT(BPF_LD | BPF_B | BPF_IND, 0),             /* ICMP type */
    JUMP(BPF_JMP | BPF_JEQ | BPF_K, 3, 2, 0),
    JUMP(BPF_JMP | BPF_JEQ | BPF_K, 11, 1, 0),
    JUMP(BPF_JMP | BPF_JEQ | BPF_K, 12, 0, 5),
    STMT(BPF_LD | BPF_B | BPF_IND, 8 + 9),         /* quoted protocol */
    JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, 0, 3),
    STMT(BPF_LD | BPF_H | BPF_IND, 8 + 20),        /* quoted TCP source port */
    JUMP(BPF_JMP | BPF_JEQ | BPF_K, port, 0, 1),
    ACCEPT,
    DROP,
  };
  return attach(fd, code, sizeof(code) / sizeof(code[0]));
}

/* ---- ICMP errors as the kernel reports them to connect() (icmp_err_convert). Over IPv6 connect()
 * ignores ICMPv6 errors while it waits for the handshake (Linux 6.18, test/e2e/probe-syn.test.ts),
 * so the prober does not read them either: both time out. ---- */
static int icmp4_errno(int type, int code) {
  static const int unreachable[] = { ENETUNREACH, EHOSTUNREACH, ENOPROTOOPT, ECONNREFUSED, EMSGSIZE, EOPNOTSUPP,
                                     ENETUNREACH, EHOSTDOWN, ENONET, ENETUNREACH, EHOSTUNREACH, ENETUNREACH,
                                     EHOSTUNREACH, EHOSTUNREACH, EHOSTUNREACH, EHOSTUNREACH };
  if (type == 3) return code == 4 || code > 15 ? 0 : unreachable[code]; /* 4: path MTU, no error */
  return type == 11 ? EHOSTUNREACH : EPROTO;
}

/* ---- the route's source address, cached per destination ----
 * The SYN's checksum covers the source address, which the kernel picks for the raw socket's packet as
 * it would for a connect() (the route's preferred source, or the outgoing device's address). Looking
 * it up per probe (connect() and getsockname() on a UDP socket) was 2 system calls per probe, so the
 * answer is kept per destination until the routing state may have changed: the kernel notifies every
 * change of routes, addresses, policy rules, next hops, links and their IP settings on an rtnetlink
 * socket, synchronously with the change (before `ip route add` returns). That socket is read before
 * each batch of SYNs; anything on it (or a lost notification: ENOBUFS) empties the caches. A batch
 * then uses what was looked up since that read, as a probe's look-up was used for its SYN until the
 * batch left before. The caches are also emptied every ROUTES_MAX_AGE_S seconds, for what the kernel
 * does not notify (among equal default routes, which gateway still answers ARP). */
#define ROUTES_MAX_AGE_S 60
#define ROUTES_MAX 2097152 /* entries per family; a full cache starts again empty */

static size_t route_slot(const route_cache *c, const uint8_t *remote) {
  uint64_t h = 0, word;
  for (size_t i = 0; i < c->address_len; i += 4) {
    uint32_t part;
    memcpy(&part, remote + i, 4);
    word = part;
    h = (h ^ word) * 0x9e3779b97f4a7c15ULL;
  }
  return (size_t)(h >> 32) & (c->capacity - 1);
}

static uint8_t *route_entry(const route_cache *c, size_t slot) { return c->entries + slot * (4 + 2 * c->address_len); }

static void routes_forget(route_cache *c) {
  free(c->entries);
  c->entries = NULL;
  c->capacity = c->count = 0;
}

/* The entry for `remote`: its state (int32 at 0), remote and local address after it. Empty (state 0)
 * when not known; NULL without memory for it. */
static uint8_t *route_find(route_cache *c, const uint8_t *remote) {
  if (2 * (c->count + 1) > c->capacity) {
    size_t capacity = c->capacity ? 2 * c->capacity : 1024;
    if (capacity > ROUTES_MAX) {
      routes_forget(c);
      capacity = 1024;
    }
    route_cache grown = { calloc(capacity, 4 + 2 * c->address_len), capacity, 0, c->address_len };
    if (!grown.entries) return NULL;
    for (size_t i = 0; i < c->capacity; i++) {
      uint8_t *old = route_entry(c, i);
      int32_t state;
      memcpy(&state, old, 4);
      if (!state) continue;
      size_t slot = route_slot(&grown, old + 4);
      while (memcmp(route_entry(&grown, slot), &(int32_t){ 0 }, 4) != 0) slot = (slot + 1) & (capacity - 1);
      memcpy(route_entry(&grown, slot), old, 4 + 2 * c->address_len);
      grown.count++;
    }
    free(c->entries);
    *c = grown;
  }
  for (size_t slot = route_slot(c, remote);; slot = (slot + 1) & (c->capacity - 1)) {
    uint8_t *entry = route_entry(c, slot);
    int32_t state;
    memcpy(&state, entry, 4);
    if (!state || memcmp(entry + 4, remote, c->address_len) == 0) return entry;
  }
}

/* Subscribes to every rtnetlink group whose changes can change a route's source address. */
static int open_route_events(void) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -1;
  struct sockaddr_nl local = { .nl_family = AF_NETLINK };
  static const int groups[] = { RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV4_RULE, RTNLGRP_IPV4_NETCONF,
                                RTNLGRP_IPV6_IFADDR, RTNLGRP_IPV6_ROUTE, RTNLGRP_IPV6_RULE, RTNLGRP_IPV6_NETCONF, RTNLGRP_NEXTHOP };
  if (bind(fd, (struct sockaddr *)&local, sizeof(local)) != 0) {
    close(fd);
    return -1;
  }
  for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
    /* Without IPv6 its groups may not exist; next hop objects came with Linux 5.3. Route and address
     * changes are what matter, and they must be heard: without them, no cache. */
    if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &groups[i], sizeof(groups[i])) != 0 &&
        (groups[i] == RTNLGRP_IPV4_ROUTE || groups[i] == RTNLGRP_IPV4_IFADDR)) {
      close(fd);
      return -1;
    }
  }
  return fd;
}

/* Empties the caches if the routing state may have changed since the last call (see above). */
static void check_routes(prober *p) {
  static __thread uint8_t scratch[8192];
  int changed = 0;
  for (;;) {
    ssize_t n = recv(p->route_events, scratch, sizeof(scratch), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno == EINTR) continue;
    changed = 1;
    if (n < 0 && errno != ENOBUFS) break;
  }
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  if (changed || now.tv_sec - p->routes_since.tv_sec >= ROUTES_MAX_AGE_S) {
    routes_forget(&p->routes[0]);
    routes_forget(&p->routes[1]);
    p->routes_since = now;
  }
}

/* Fills in t->local, the source address the kernel picks towards `to`; 0 or an errno. */
static int source_address(prober *p, tuple *t, const struct sockaddr_in6 *to, socklen_t to_len) {
  int v6 = t->family == 6;
  size_t len = v6 ? 16 : 4;
  uint8_t *entry = p->route_events >= 0 ? route_find(&p->routes[v6], t->remote) : NULL;
  int32_t state = 0;
  if (entry) memcpy(&state, entry, 4);
  if (state == 1) {
    memcpy(t->local, entry + 4 + len, len);
    return 0;
  }
  if (state < 0) return -state;
  /* connect() on UDP looks the route up, sending nothing. A connected UDP socket keeps its source for
   * later connect()s, so it is disconnected first (AF_UNSPEC), which makes it pick one afresh. */
  struct sockaddr_in6 from;
  socklen_t from_len = sizeof(from);
  struct sockaddr unspec = { .sa_family = AF_UNSPEC };
  int err = 0;
  if (connect(p->route[v6], &unspec, sizeof(unspec)) != 0 || connect(p->route[v6], (const struct sockaddr *)to, to_len) != 0 ||
      getsockname(p->route[v6], (struct sockaddr *)&from, &from_len) != 0)
    err = errno;
  if (!err) memcpy(t->local, v6 ? (void *)&from.sin6_addr : (void *)&((struct sockaddr_in *)&from)->sin_addr, len);
  if (entry) {
    state = err ? -err : 1;
    memcpy(entry, &state, 4);
    memcpy(entry + 4, t->remote, len);
    memcpy(entry + 4 + len, t->local, len);
    p->routes[v6].count++;
  }
  return err;
}

/* ---- sockets ---- */
static int raw_socket(int family, int protocol, uint16_t port) {
  int fd = socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) return -errno;
  int rc;
  if (family == AF_INET) rc = protocol == IPPROTO_TCP ? filter_tcp4(fd, port) : filter_icmp4(fd, port);
  else rc = filter_tcp6(fd, port);
  int on = 1, size = 4 << 20;
  if (rc == 0 && family == AF_INET6) rc = setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on));
  if (rc != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  /* A larger receive buffer rides out bursts of answers; without CAP_NET_ADMIN the kernel caps it at rmem_max. */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  /* Packets queued before the filter was attached passed no filter. */
  uint8_t scratch[PACKET_MAX];
  while (recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT) >= 0) {}
  return fd;
}

/* Binds a TCP socket to a free port without listening: the kernel hands that port to no other socket,
 * and answers every SYN-ACK to it with a RST, which closes our half-open connection at the target. */
static int reserve_port(uint16_t *port) {
  struct sockaddr_in6 any6 = { .sin6_family = AF_INET6 };
  struct sockaddr_in any4 = { .sin_family = AF_INET };
  int off = 0, fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) != 0 || bind(fd, (struct sockaddr *)&any6, sizeof(any6)) != 0)) {
    close(fd);
    fd = -1;
  }
  if (fd < 0) { /* no IPv6 on this host: an IPv4 port then */
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&any4, sizeof(any4)) != 0) {
      int err = errno;
      if (fd >= 0) close(fd);
      return -err;
    }
  }
  struct sockaddr_storage bound;
  socklen_t len = sizeof(bound);
  getsockname(fd, (struct sockaddr *)&bound, &len);
  *port = bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port : ((struct sockaddr_in *)&bound)->sin_port;
  return fd;
}

static void unref(prober *p) {
  if (--p->refs == 0) free(p);
}

static void on_poll_closed(uv_handle_t *handle) { unref(handle->data); }

static void close_prober(prober *p) {
  if (p->closed) return;
  p->closed = 1;
  for (int i = 0; i < RAW_SOCKETS; i++) {
    if (p->raw[i] < 0) continue;
    if (p->polling) {
      uv_poll_stop(&p->poll[i]);
      uv_close((uv_handle_t *)&p->poll[i], on_poll_closed);
    }
    close(p->raw[i]);
  }
  for (int i = 0; i < 2; i++) if (p->route[i] >= 0) close(p->route[i]);
  if (p->route_events >= 0) close(p->route_events);
  routes_forget(&p->routes[0]);
  routes_forget(&p->routes[1]);
  if (p->reserve_fd >= 0) close(p->reserve_fd);
  if (p->polling) {
    napi_delete_reference(p->env, p->on_readable);
    napi_async_destroy(p->env, p->async);
  }
}

/* ---- N-API ---- */
#define CHECK(call) \
  do { if ((call) != napi_ok) { napi_throw_error(env, NULL, #call " failed"); return NULL; } } while (0)

static napi_value throw_errno(napi_env env, int err, const char *what) {
  char message[128];
  snprintf(message, sizeof(message), "%s: %s", what, strerror(err));
  napi_throw_error(env, uv_err_name(-err), message);
  return NULL;
}

static prober *unwrap(napi_env env, napi_value value) {
  prober *p = NULL;
  if (napi_get_value_external(env, value, (void **)&p) != napi_ok || p == NULL || p->closed) {
    napi_throw_error(env, NULL, "half-open prober closed");
    return NULL;
  }
  return p;
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)status; (void)events;
  prober *p = handle->data;
  napi_env env = p->env;
  napi_handle_scope scope;
  napi_value callback, global, result;
  napi_open_handle_scope(env, &scope);
  napi_get_reference_value(env, p->on_readable, &callback);
  napi_get_global(env, &global);
  if (napi_make_callback(env, p->async, global, callback, 0, NULL, &result) == napi_pending_exception) {
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_fatal_exception(env, error);
  }
  napi_close_handle_scope(env, scope);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  close_prober(data);
  unref(data);
}

static void cleanup_hook(void *data) { close_prober(data); }

/* open(onReadable) -> [handle, port]. Throws with the errno's code (EPERM without CAP_NET_RAW). */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], handle, port, result, name;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  prober *p = calloc(1, sizeof(prober));
  if (!p) return throw_errno(env, ENOMEM, "half-open prober");
  p->env = env;
  p->refs = 1;
  p->route[0] = p->route[1] = -1;
  p->routes[0].address_len = 4;
  p->routes[1].address_len = 16;
  p->route_events = open_route_events();
  clock_gettime(CLOCK_MONOTONIC_COARSE, &p->routes_since);
  for (int i = 0; i < RAW_SOCKETS; i++) p->raw[i] = -1;
  int err = 0;
  const char *what = "reserving a port";
  p->reserve_fd = reserve_port(&p->port);
  if (p->reserve_fd < 0) err = -p->reserve_fd;
  if (!err && getrandom(p->key, sizeof(p->key), 0) != sizeof(p->key)) err = errno, what = "getrandom";
  static const int families[RAW_SOCKETS] = { AF_INET, AF_INET6, AF_INET };
  static const int protocols[RAW_SOCKETS] = { IPPROTO_TCP, IPPROTO_TCP, IPPROTO_ICMP };
  for (int i = 0; !err && i < RAW_SOCKETS; i++) {
    p->raw[i] = raw_socket(families[i], protocols[i], ntohs(p->port));
    /* A host without IPv6 probes IPv4 only; anything else (EPERM: no CAP_NET_RAW) is fatal. */
    if (p->raw[i] < 0 && !(families[i] == AF_INET6 && p->raw[i] == -EAFNOSUPPORT)) err = -p->raw[i], what = "opening a raw socket";
    if (p->raw[i] < 0) p->raw[i] = -1;
  }
  for (int i = 0; !err && i < 2; i++) {
    p->route[i] = socket(i ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (p->route[i] < 0 && !(i == 1 && errno == EAFNOSUPPORT)) err = errno, what = "opening a UDP socket";
  }
  if (err) {
    close_prober(p);
    free(p);
    return throw_errno(env, err, what);
  }
  CHECK(napi_create_reference(env, argv[0], 1, &p->on_readable));
  CHECK(napi_create_string_utf8(env, "half-open TCP probe", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &p->async));
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  p->polling = 1;
  for (int i = 0; i < RAW_SOCKETS; i++) {
    if (p->raw[i] < 0) continue;
    uv_poll_init(loop, &p->poll[i], p->raw[i]);
    p->poll[i].data = p;
    p->refs++;
    uv_poll_start(&p->poll[i], UV_READABLE, on_readable);
    /* Pending probes keep the process alive through their timers, not through these sockets. */
    uv_unref((uv_handle_t *)&p->poll[i]);
  }
  CHECK(napi_add_env_cleanup_hook(env, cleanup_hook, p));
  CHECK(napi_create_external(env, p, finalize, NULL, &handle));
  CHECK(napi_create_uint32(env, ntohs(p->port), &port));
  CHECK(napi_create_array_with_length(env, 2, &result));
  CHECK(napi_set_element(env, result, 0, handle));
  CHECK(napi_set_element(env, result, 1, port));
  return result;
}

/* Fills the remote address of `t` and `to` from a text; IPv4-mapped IPv6 goes out as IPv4. The port
 * stays in the TCP header: a raw IPv6 socket would read sin6_port as a protocol number. */
static int parse_target(const char *text, tuple *t, struct sockaddr_in6 *to) {
  struct in6_addr a6;
  struct in_addr a4;
  memset(to, 0, sizeof(*to));
  if (inet_pton(AF_INET, text, &a4) == 1) {
  ipv4:
    t->family = 4;
    memcpy(t->remote, &a4, 4);
    struct sockaddr_in *sin = (struct sockaddr_in *)to;
    sin->sin_family = AF_INET;
    sin->sin_addr = a4;
    return 0;
  }
  if (inet_pton(AF_INET6, text, &a6) != 1) return EINVAL;
  if (IN6_IS_ADDR_V4MAPPED(&a6)) {
    memcpy(&a4, a6.s6_addr + 12, 4);
    goto ipv4;
  }
  t->family = 6;
  memcpy(t->remote, &a6, 16);
  to->sin6_family = AF_INET6;
  to->sin6_addr = a6;
  return 0;
}

/* queue(handle, address, port) -> the probe's key, or the errno code (string) of a probe that cannot
 * leave this host (no route, a blackhole route, no IPv6). Sent by the next flush(). */
static napi_value js_queue(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  char text[INET6_ADDRSTRLEN + 1];
  uint32_t port;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  prober *p = unwrap(env, argv[0]);
  if (!p) return NULL;
  CHECK(napi_get_value_string_latin1(env, argv[1], text, sizeof(text), NULL));
  CHECK(napi_get_value_uint32(env, argv[2], &port));
  tuple t = { 0 };
  t.remote_port = htons(port);
  t.local_port = p->port;
  struct sockaddr_in6 to;
  int err = parse_target(text, &t, &to);
  int v6 = t.family == 6;
  if (!err && (p->raw[v6 ? TCP6 : TCP4] < 0 || p->route[v6] < 0)) err = EAFNOSUPPORT;
  socklen_t to_len = v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  /* The first SYN of a batch: whether the cached source addresses still hold. */
  if (!err && p->route_events >= 0 && p->out[0].count + p->out[1].count == 0) check_routes(p);
  if (!err) err = source_address(p, &t, &to, to_len);
  if (err) {
    CHECK(napi_create_string_utf8(env, uv_err_name(-err), NAPI_AUTO_LENGTH, &result));
    return result;
  }
  send_queue *q = &p->out[v6];
  if (q->count == BATCH) {
    napi_throw_error(env, NULL, "half-open send queue full: flush first");
    return NULL;
  }
  int i = q->count++;
  uint64_t hash = tuple_hash(p, &t);
  build_syn(q->packet[i], &t, (uint32_t)hash);
  q->to[i] = to;
  q->iov[i] = (struct iovec){ q->packet[i], SYN_LEN };
  q->msg[i].msg_hdr = (struct msghdr){ .msg_name = &q->to[i], .msg_namelen = to_len, .msg_iov = &q->iov[i], .msg_iovlen = 1 };
  q->key[i] = js_key(hash);
  CHECK(napi_create_double(env, q->key[i], &result));
  return result;
}

/* flush(handle) -> null when every queued SYN left, else [key, errno code, ...] of those that did not. */
static napi_value js_flush(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], failures = NULL, value;
  uint32_t failed = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  prober *p = unwrap(env, argv[0]);
  if (!p) return NULL;
  for (int v6 = 0; v6 < 2; v6++) {
    send_queue *q = &p->out[v6];
    int fd = p->raw[v6 ? TCP6 : TCP4];
    for (int i = 0; i < q->count;) {
      int sent = sendmmsg(fd, q->msg + i, q->count - i, 0);
      if (sent > 0) {
        i += sent;
        continue;
      }
      if (errno == EINTR) continue;
      /* sendmmsg stops at the first message that fails; that one is reported, the rest go on. */
      if (!failures) CHECK(napi_create_array(env, &failures));
      CHECK(napi_create_double(env, q->key[i], &value));
      CHECK(napi_set_element(env, failures, failed++, value));
      CHECK(napi_create_string_utf8(env, uv_err_name(-errno), NAPI_AUTO_LENGTH, &value));
      CHECK(napi_set_element(env, failures, failed++, value));
      i++;
    }
    q->count = 0;
  }
  if (failures) return failures;
  CHECK(napi_get_null(env, &value));
  return value;
}

/* Reads what answers a probe out of one received packet: its tuple, the sequence number it must
 * carry, and what it says; 0 when it answers nothing. */
static int parse_reply(int socket, const uint8_t *b, size_t len, const struct msghdr *h, tuple *t, uint32_t *seq) {
  const uint8_t *tcp;
  int answer;
  if (socket == TCP4 || socket == ICMP4) {
    size_t ihl;
    if (len < 20 || (ihl = (size_t)(b[0] & 0xf) * 4) < 20) return 0;
    t->family = 4;
    if (socket == TCP4) {
      if (len < ihl + 20) return 0;
      memcpy(t->remote, b + 12, 4);
      memcpy(t->local, b + 16, 4);
      tcp = b + ihl;
    } else {
      const uint8_t *quoted = b + ihl + 8;
      if (len < ihl + 8 + 20 + 8 || !(answer = -icmp4_errno(b[ihl], b[ihl + 1]))) return 0;
      memcpy(t->local, quoted + 12, 4);
      memcpy(t->remote, quoted + 16, 4);
      memcpy(&t->local_port, quoted + 20, 2);
      memcpy(&t->remote_port, quoted + 22, 2);
      *seq = get32(quoted + 24);
      return answer;
    }
  } else {
    /* IPv6 raw sockets get no IP header: the source is the sender's address, our address comes as IPV6_PKTINFO. */
    struct cmsghdr *c;
    if (len < 20) return 0;
    t->family = 6;
    memcpy(t->remote, &((struct sockaddr_in6 *)h->msg_name)->sin6_addr, 16);
    for (c = CMSG_FIRSTHDR(h); c && !(c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO); c = CMSG_NXTHDR((struct msghdr *)h, c)) {}
    if (!c) return 0;
    memcpy(t->local, &((struct in6_pktinfo *)CMSG_DATA(c))->ipi6_addr, 16);
    tcp = b;
  }
  /* A SYN-ACK or a RST acknowledges our SYN: ack = our sequence number + 1. */
  if (!(tcp[13] & TCP_ACK)) return 0;
  memcpy(&t->remote_port, tcp, 2);
  memcpy(&t->local_port, tcp + 2, 2);
  *seq = get32(tcp + 8) - 1;
  if (tcp[13] & TCP_RST) return ANSWER_REFUSED;
  return tcp[13] & TCP_SYN ? ANSWER_OPEN : 0;
}

/* receive(handle, out: Float64Array) -> n: answers read without blocking, out[2i] the probe's key and
 * out[2i+1] ANSWER_OPEN, ANSWER_REFUSED or -errno of an ICMP error. Call again while n fills `out`. */
static napi_value js_receive(napi_env env, napi_callback_info info) {
  size_t argc = 2, length;
  napi_value argv[2], result;
  napi_typedarray_type type;
  double *out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  prober *p = unwrap(env, argv[0]);
  if (!p) return NULL;
  CHECK(napi_get_typedarray_info(env, argv[1], &type, &length, (void **)&out, NULL, NULL));
  if (type != napi_float64_array) {
    napi_throw_type_error(env, NULL, "receive needs a Float64Array");
    return NULL;
  }
  size_t capacity = length / 2, n = 0;
  static __thread uint8_t packets[BATCH][PACKET_MAX];
  static __thread uint8_t control[BATCH][CMSG_SPACE(sizeof(struct in6_pktinfo))];
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_in6 from[BATCH];
  for (int s = 0; s < RAW_SOCKETS && n < capacity; s++) {
    if (p->raw[s] < 0) continue;
    for (;;) {
      int want = capacity - n < BATCH ? (int)(capacity - n) : BATCH;
      for (int i = 0; i < want; i++) {
        iov[i] = (struct iovec){ packets[i], PACKET_MAX };
        msgs[i].msg_hdr = (struct msghdr){ .msg_name = &from[i], .msg_namelen = sizeof(from[i]), .msg_iov = &iov[i], .msg_iovlen = 1,
                                           .msg_control = control[i], .msg_controllen = sizeof(control[i]) };
      }
      int got = recvmmsg(p->raw[s], msgs, want, MSG_DONTWAIT, NULL);
      if (got <= 0) break; /* EAGAIN: nothing waits; any other error ends this read too */
      p->packets_read += got;
      for (int i = 0; i < got; i++) {
        tuple t = { 0 };
        uint32_t seq = 0;
        int answer = parse_reply(s, packets[i], msgs[i].msg_len, &msgs[i].msg_hdr, &t, &seq);
        if (!answer || t.local_port != p->port) continue;
        uint64_t hash = tuple_hash(p, &t);
        if ((uint32_t)hash != seq) continue; /* not our SYN: a forged, foreign or corrupted packet */
        out[2 * n] = js_key(hash);
        out[2 * n + 1] = answer;
        n++;
        p->answers++;
      }
      if (got < want || n == capacity) break;
    }
  }
  CHECK(napi_create_uint32(env, (uint32_t)n, &result));
  return result;
}

/* stats(handle) -> [packets that passed the filters, of them answers to our probes]. */
static napi_value js_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, value;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  prober *p = unwrap(env, argv[0]);
  if (!p) return NULL;
  CHECK(napi_create_array_with_length(env, 2, &result));
  CHECK(napi_create_double(env, p->packets_read, &value));
  CHECK(napi_set_element(env, result, 0, value));
  CHECK(napi_create_double(env, p->answers, &value));
  CHECK(napi_set_element(env, result, 1, value));
  return result;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  prober *p = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_external(env, argv[0], (void **)&p));
  if (!p->closed) napi_remove_env_cleanup_hook(env, cleanup_hook, p);
  close_prober(p);
  return NULL;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_property_descriptor functions[] = {
    { "open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL },
    { "queue", NULL, js_queue, NULL, NULL, NULL, napi_default, NULL },
    { "flush", NULL, js_flush, NULL, NULL, NULL, napi_default, NULL },
    { "receive", NULL, js_receive, NULL, NULL, NULL, napi_default, NULL },
    { "stats", NULL, js_stats, NULL, NULL, NULL, napi_default, NULL },
    { "close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL },
  };
  if (napi_define_properties(env, exports, sizeof(functions) / sizeof(functions[0]), functions) != napi_ok) return NULL;
  return exports;
}

// pktdelay holds every packet of one netfilter queue for a random delay, then lets it pass: the
// soak's stand-in for `tc netem delay`, which this machine's kernel lacks. Packets reach the queue
// through an iptables NFQUEUE rule in the namespace the process runs in; loss is an iptables
// `statistic` rule of its own, not done here.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"time"

	nfqueue "github.com/florianl/go-nfqueue"
)

func main() {
	queue := flag.Uint("queue", 0, "netfilter queue number")
	delay := flag.Duration("delay", 20*time.Millisecond, "mean delay")
	jitter := flag.Duration("jitter", 10*time.Millisecond, "delays are uniform in delay±jitter")
	flag.Parse()
	if *jitter > *delay {
		fail(fmt.Errorf("jitter %v exceeds delay %v", *jitter, *delay))
	}
	nf, err := nfqueue.Open(&nfqueue.Config{
		NfQueue:      uint16(*queue),
		MaxPacketLen: 0, // verdicts need only the packet id
		MaxQueueLen:  0xffff,
		Copymode:     nfqueue.NfQnlCopyMeta,
		WriteTimeout: 100 * time.Millisecond,
	})
	if err != nil {
		fail(err)
	}
	defer nf.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hold := func(a nfqueue.Attribute) int {
		id := *a.PacketID
		wait := *delay + time.Duration((rand.Float64()*2-1)*float64(*jitter))
		time.AfterFunc(wait, func() { _ = nf.SetVerdict(id, nfqueue.NfAccept) })
		return 0
	}
	// A receive error (e.g. the queue overflowing) must not end the delay: packets would then pass undelayed.
	onError := func(e error) int {
		if ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "pktdelay:", e)
		}
		return 0
	}
	if err := nf.RegisterWithErrorFunc(ctx, hold, onError); err != nil {
		fail(err)
	}
	fmt.Println("ready")
	<-ctx.Done()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "pktdelay:", err)
	os.Exit(1)
}

// yamuxpeer: hashicorp/yamux (Debian's golang-github-hashicorp-yamux-dev)
// as a real peer for dgrelay's mux tests.  Build offline:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o test/yamuxpeer/yamuxpeer ./test/yamuxpeer
//
// Each stream carries frames: a 2-byte big-endian length, then the bytes.
//
//	yamuxpeer open HOST:PORT N [hold SEC] [slow]
//	                               dial a carrier, open N streams, send a
//	                               frame on each naming it, expect it back;
//	                               prints "ok N streams", exits 0; hold:
//	                               first prints "holding N" and keeps the
//	                               streams open SEC seconds; slow: a
//	                               stream every 50 ms
//	yamuxpeer accept HOST:PORT N   listen, take one carrier, accept N
//	                               streams, echo every frame back; prints
//	                               "port P" first, "ok N streams" at the end
package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
)

func fail(f string, a ...interface{}) {
	fmt.Printf("FAIL "+f+"\n", a...)
	os.Exit(1)
}

func config() *yamux.Config {
	c := yamux.DefaultConfig()
	c.KeepAliveInterval = time.Second
	c.LogOutput = os.Stderr
	return c
}

func readFrame(r io.Reader) ([]byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(h[:]))
	_, err := io.ReadFull(r, b)
	return b, err
}

func writeFrame(w io.Writer, b []byte) error {
	var h [2]byte
	binary.BigEndian.PutUint16(h[:], uint16(len(b)))
	_, err := w.Write(append(h[:], b...))
	return err
}

func main() {
	if len(os.Args) < 4 {
		fail("usage: yamuxpeer open|accept HOST:PORT N")
	}
	hold, slow := 0, false
	for i := 4; i < len(os.Args); i++ {
		switch os.Args[i] {
		case "hold":
			if i+1 < len(os.Args) {
				hold, _ = strconv.Atoi(os.Args[i+1])
				i++
			}
		case "slow":
			slow = true
		}
	}
	n, err := strconv.Atoi(os.Args[3])
	if err != nil {
		fail("N: %v", err)
	}
	switch os.Args[1] {
	case "open":
		c, err := net.Dial("tcp", os.Args[2])
		if err != nil {
			fail("dial: %v", err)
		}
		s, err := yamux.Client(c, config())
		if err != nil {
			fail("yamux: %v", err)
		}
		var wg, echoed sync.WaitGroup
		errs := make(chan error, n)
		release := make(chan struct{})
		for i := 0; i < n; i++ {
			if slow {
				time.Sleep(50 * time.Millisecond)
			}
			wg.Add(1)
			echoed.Add(1)
			go func(i int) {
				defer wg.Done()
				st, err := s.Open()
				if err != nil {
					echoed.Done()
					errs <- err
					return
				}
				defer st.Close()
				msg := []byte(fmt.Sprintf("stream %d", i))
				if err := writeFrame(st, msg); err != nil {
					errs <- err
					return
				}
				st.SetReadDeadline(time.Now().Add(30 * time.Second))
				b, err := readFrame(st)
				if err != nil {
					errs <- err
					return
				}
				if string(b) != string(msg) {
					errs <- fmt.Errorf("stream %d got %q", i, b)
				}
				echoed.Done()
				<-release
			}(i)
		}
		echoed.Wait()
		if hold > 0 {
			fmt.Printf("holding %d\n", n)
			time.Sleep(time.Duration(hold) * time.Second)
		}
		close(release)
		wg.Wait()
		close(errs)
		for err := range errs {
			fail("%v", err)
		}
		// the FINs out before the carrier goes
		time.Sleep(500 * time.Millisecond)
		s.Close()
		fmt.Printf("ok %d streams\n", n)
	case "accept":
		l, err := net.Listen("tcp", os.Args[2])
		if err != nil {
			fail("listen: %v", err)
		}
		fmt.Printf("port %d\n", l.Addr().(*net.TCPAddr).Port)
		c, err := l.Accept()
		if err != nil {
			fail("accept: %v", err)
		}
		s, err := yamux.Server(c, config())
		if err != nil {
			fail("yamux: %v", err)
		}
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			st, err := s.Accept()
			if err != nil {
				fail("accept stream %d: %v", i, err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer st.Close()
				for {
					b, err := readFrame(st)
					if err != nil {
						return
					}
					if writeFrame(st, b) != nil {
						return
					}
				}
			}()
		}
		wg.Wait()
		fmt.Printf("ok %d streams\n", n)
	default:
		fail("usage: yamuxpeer open|accept HOST:PORT N")
	}
}

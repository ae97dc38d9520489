package server

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// certReloader serves the certificate in certFile/keyFile and loads it again
// when either file changes, so certificates rotate without a restart. New
// connections get the new certificate; open ones keep theirs.
type certReloader struct {
	certFile, keyFile string

	mu       sync.Mutex
	cert     *tls.Certificate
	certStat fileStamp
	keyStat  fileStamp
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func stamp(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.ModTime(), fi.Size()}, nil
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	if _, err := r.get(); err != nil {
		return nil, err
	}
	return r, nil
}

// GetCertificate implements tls.Config.GetCertificate.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.get()
}

func (r *certReloader) get() (*tls.Certificate, error) {
	cs, err1 := stamp(r.certFile)
	ks, err2 := stamp(r.keyFile)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cert != nil && (err1 != nil || err2 != nil || (cs == r.certStat && ks == r.keyStat)) {
		// Unchanged, or mid-rotation (a file briefly missing): keep serving the last good one.
		return r.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		if r.cert != nil {
			return r.cert, nil // a half-written pair: keep the last good one until both files agree
		}
		return nil, fmt.Errorf("loading TLS certificate: %w", err)
	}
	r.cert, r.certStat, r.keyStat = &cert, cs, ks
	return r.cert, nil
}

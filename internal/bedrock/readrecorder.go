package bedrock

import "io"

// ReadRecorder remembers the error of the reader under an event-stream
// decoder, so that a failure to decode an envelope can be told apart: the
// input ended or broke off (Err is set: the client went away or closed its
// side), or bytes arrived that were no valid envelope (Err is nil). The
// gateway's bidirectional pump and the simulator both read their callers'
// envelopes through one.
type ReadRecorder struct {
	R   io.Reader
	Err error // the last error R returned, nil while none
}

func (rr *ReadRecorder) Read(p []byte) (int, error) {
	n, err := rr.R.Read(p)
	if err != nil {
		rr.Err = err
	}
	return n, err
}

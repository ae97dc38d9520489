package bedrock

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadRecorder(t *testing.T) {
	t.Parallel()
	broken := errors.New("connection reset")
	tests := []struct {
		name string
		r    io.Reader
		want error
	}{
		{name: "ends", r: strings.NewReader("abc"), want: io.EOF},
		{name: "breaks off", r: io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(broken)), want: broken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rr := &ReadRecorder{R: tt.r}
			buf := make([]byte, 2)
			if _, err := rr.Read(buf); err != nil || rr.Err != nil {
				t.Fatalf("first read: %v, recorded %v", err, rr.Err)
			}
			got, err := io.ReadAll(rr)
			if err != nil && !errors.Is(err, broken) {
				t.Fatal(err)
			}
			if string(got) != "c" || !errors.Is(rr.Err, tt.want) {
				t.Fatalf("read %q, recorded %v, want %v", got, rr.Err, tt.want)
			}
		})
	}
}

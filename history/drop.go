package history

// Drop forgets topic's stream, its entries and its epoch: a resume to it
// then reports epoch_changed. For an owner that stops receiving a
// topic's events (a cluster node whose last local subscriber left: it
// unsubscribes from the topic at Redis), whose stream would otherwise go
// stale and answer a resume as if nothing had happened since. Same
// goroutine rule as the other methods.
func (st *Store) Drop(topic string) {
	if s, ok := st.streams[topic]; ok {
		st.remove(topic, s)
	}
}

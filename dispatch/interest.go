package dispatch

// Interest learns of topics gaining and losing local subscribers: a
// broker subscribes this node to a topic at the ordering authority only
// while someone here listens (the cluster broker's interest-based
// SUBSCRIBE). Both methods are called on the dispatcher goroutine, in the
// order the registry changed, and must not block: an implementation hands
// the change to its own goroutine through a bounded queue. topic is the
// registry's string, immutable and safe to keep.
//
// A dispatcher with an Interest hook receives only the events of topics
// it listens to (a subscriber, or a fill or replay holding the topic:
// fill.go), so when a topic loses its last one its history stream is
// dropped (a later resume to it is filled from the authority, or
// refused, instead of missing what was published meanwhile), and an
// event still in flight does not start a new one.
type Interest interface {
	// TopicAdded is called when topic gets its first local subscriber.
	TopicAdded(topic string)
	// TopicRemoved is called when topic's last local subscriber leaves.
	TopicRemoved(topic string)
}

// noteAdded tells the interest hook, if any, that topic is about to get
// its first subscriber. Called by the dispatcher goroutine before it
// registers a subscription, so the hook sees a topic before its events
// can matter.
func (d *Dispatcher) noteAdded(topic string) {
	if d.interest != nil && !d.reg.Has(topic) && d.held[topic] == 0 {
		d.interest.TopicAdded(topic)
	}
}

// remove takes s out of the registry, telling the interest hook when its
// topic lost its last subscriber (and no fill or replay holds it, fill.go);
// then this node stops receiving the topic, so its history stream (which
// would go stale) is dropped. Called by the dispatcher goroutine.
func (d *Dispatcher) remove(s *Subscription) {
	h := s.handle
	s.handle = nil
	if d.interest == nil {
		d.reg.Remove(h)
		return
	}
	topic := h.Group().Topic()
	if d.reg.Remove(h) && d.held[topic] == 0 {
		d.stopListening(topic)
	}
}

// stopListening tells the interest hook that the node no longer listens
// to topic and drops its history stream, which would go stale. Called by
// the dispatcher goroutine.
func (d *Dispatcher) stopListening(topic string) {
	d.interest.TopicRemoved(topic)
	if d.hist != nil {
		d.hist.Drop(topic)
		d.hist.DropStage(topic)
	}
}

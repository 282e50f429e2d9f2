package leadstage.peer;

import java.io.File;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.LocalDate;
import java.util.Arrays;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;

/**
 * The JVM peer: the default definitions' stage job as a Kafka Streams app written the usual way
 * (Processor API, one RocksDB key-value store with its record cache and changelog, one stream
 * thread, defaults otherwise). Same job as bench/peers/quix_peer.py: per lead, contacts,
 * interest-signal times within 90 days of the lead's latest event and the latest decision date,
 * evaluated at the lead's latest event time; a JSON change record on every change of stage.
 *
 * <p>Usage: StagePeer BOOTSTRAP INPUT OUTPUT APP_ID STATE_DIR SCHEMA EXPECTED. Prints
 * {"first": s, "done": s, "events": n} (monotonic seconds) after EXPECTED events and stops.
 */
public final class StagePeer {
  static final long DAY_MS = 86_400_000L;
  static final long WINDOW_MS = 90 * DAY_MS;
  static final int NO_DATE = Integer.MIN_VALUE;
  static final String[] STAGES = {"cold", "warm", "hot"};

  static final AtomicLong processed = new AtomicLong();
  static volatile long firstNanos;
  static volatile long doneNanos;

  /** A lead's state, kept as compact bytes in the store. */
  static final class Lead {
    int contacts;
    long latest;
    long decisionAt = Long.MIN_VALUE;
    String decisionId = "";
    int decisionBy = NO_DATE;
    int stage = -1;
    long[] times = new long[0];
    int count;

    static Lead decode(byte[] raw) {
      Lead lead = new Lead();
      if (raw == null) {
        return lead;
      }
      ByteBuffer b = ByteBuffer.wrap(raw);
      lead.contacts = b.getInt();
      lead.latest = b.getLong();
      lead.decisionAt = b.getLong();
      lead.decisionBy = b.getInt();
      lead.stage = b.get();
      byte[] id = new byte[b.getShort()];
      b.get(id);
      lead.decisionId = new String(id, StandardCharsets.UTF_8);
      lead.count = b.getInt();
      lead.times = new long[Math.max(4, lead.count)];
      for (int i = 0; i < lead.count; i++) {
        lead.times[i] = b.getLong();
      }
      return lead;
    }

    byte[] encode() {
      byte[] id = decisionId.getBytes(StandardCharsets.UTF_8);
      ByteBuffer b = ByteBuffer.allocate(4 + 8 + 8 + 4 + 1 + 2 + id.length + 4 + 8 * count);
      b.putInt(contacts).putLong(latest).putLong(decisionAt).putInt(decisionBy);
      b.put((byte) stage).putShort((short) id.length).put(id).putInt(count);
      for (int i = 0; i < count; i++) {
        b.putLong(times[i]);
      }
      return b.array();
    }

    /** The first index whose time is greater than t (times[0..count) is sorted). */
    int above(long t) {
      int lo = 0;
      int hi = count;
      while (lo < hi) {
        int mid = (lo + hi) >>> 1;
        if (times[mid] <= t) {
          lo = mid + 1;
        } else {
          hi = mid;
        }
      }
      return lo;
    }

    void insert(long t) {
      int at = above(t);
      if (count == times.length) {
        times = Arrays.copyOf(times, Math.max(4, count * 2));
      }
      System.arraycopy(times, at, times, at + 1, count - at);
      times[at] = t;
      count++;
    }

    void prune(long horizon) {
      int cut = above(horizon);
      if (cut > 0) {
        System.arraycopy(times, cut, times, 0, count - cut);
        count -= cut;
      }
    }

    int evaluate() {
      if (contacts < 1) {
        return -1;
      }
      long today = Math.floorDiv(latest, DAY_MS);
      if (decisionBy != NO_DATE && today <= decisionBy
          && decisionBy <= LocalDate.ofEpochDay(today).plusMonths(6).toEpochDay()) {
        return 2;
      }
      int recent = above(latest) - above(latest - WINDOW_MS);
      return recent >= 1 ? 1 : 0;
    }
  }

  static final class StageProcessor implements Processor<String, byte[], String, String> {
    private final GenericDatumReader<GenericRecord> reader;
    private KeyValueStore<String, byte[]> store;
    private ProcessorContext<String, String> context;
    private BinaryDecoder decoder;
    private GenericRecord reuse;
    private final long expected;

    StageProcessor(Schema schema, long expected) {
      this.reader = new GenericDatumReader<>(schema);
      this.expected = expected;
    }

    @Override
    public void init(ProcessorContext<String, String> context) {
      this.context = context;
      this.store = context.getStateStore("leads");
    }

    @Override
    public void process(Record<String, byte[]> record) {
      long n = processed.incrementAndGet();
      if (n == 1) {
        firstNanos = System.nanoTime();
      }
      if (n == expected) {
        doneNanos = System.nanoTime();
      }
      byte[] value = record.value();
      decoder = DecoderFactory.get().binaryDecoder(value, 10, value.length - 10, decoder);
      try {
        reuse = reader.read(reuse, decoder);
      } catch (java.io.IOException e) {
        return; // not a LeadActivity: skipped
      }
      String activity = reuse.get("activity").toString();
      long at = (Long) reuse.get("occurred_at");
      String key = record.key();
      if (activity.equals("ERASURE_REQUESTED")) {
        store.delete(key);
        return;
      }
      Lead lead = Lead.decode(store.get(key));
      switch (activity) {
        case "CONTACTED" -> lead.contacts++;
        case "DETAILS_PROVIDED", "PRICING_VIEWED", "CONTENT_DOWNLOADED", "WEBINAR_ATTENDED",
            "DEMO_REQUESTED", "MEETING_HELD" -> lead.insert(at);
        case "DECISION_TIMELINE_PROVIDED" -> {
          String id = reuse.get("event_id").toString();
          if (lead.decisionAt == Long.MIN_VALUE || at > lead.decisionAt
              || (at == lead.decisionAt && id.compareTo(lead.decisionId) > 0)) {
            lead.decisionAt = at;
            lead.decisionId = id;
            lead.decisionBy = (Integer) reuse.get("decision_by");
          }
        }
        default -> { }
      }
      if (at > lead.latest) {
        lead.latest = at;
        lead.prune(at - WINDOW_MS);
      }
      int stage = lead.evaluate();
      int previous = lead.stage;
      lead.stage = stage;
      store.put(key, lead.encode());
      if (stage != previous) {
        String change = "{\"lead_id\":\"" + key + "\",\"previous_stage\":"
            + (previous < 0 ? "null" : "\"" + STAGES[previous] + "\"") + ",\"stage\":"
            + (stage < 0 ? "null" : "\"" + STAGES[stage] + "\"") + ",\"changed_at\":"
            + lead.latest + "}";
        context.forward(new Record<>(key, change, record.timestamp()));
      }
    }
  }

  public static void main(String[] args) throws Exception {
    String bootstrap = args[0];
    String input = args[1];
    String output = args[2];
    String appId = args[3];
    String stateDir = args[4];
    Schema schema = new Schema.Parser().parse(new File(args[5]));
    long expected = Long.parseLong(args[6]);

    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
    props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");

    Topology topology = new Topology();
    topology.addSource("events", Serdes.String().deserializer(),
        Serdes.ByteArray().deserializer(), input);
    topology.addProcessor("stage", () -> new StageProcessor(schema, expected), "events");
    topology.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore("leads"),
        Serdes.String(), Serdes.ByteArray()).withCachingEnabled(), "stage");
    topology.addSink("changes", output, Serdes.String().serializer(),
        Serdes.String().serializer(), "stage");

    KafkaStreams streams = new KafkaStreams(topology, props);
    streams.start();
    while (processed.get() < expected) {
      Thread.sleep(20);
      if (streams.state() == KafkaStreams.State.ERROR
          || streams.state() == KafkaStreams.State.NOT_RUNNING) {
        System.err.println("kafka streams stopped: " + streams.state());
        System.exit(1);
      }
    }
    streams.close(java.time.Duration.ofSeconds(30));
    System.out.printf("{\"first\": %.6f, \"done\": %.6f, \"events\": %d}%n",
        firstNanos / 1e9, doneNanos / 1e9, processed.get());
  }
}

//! A synthetic history shaped like a busy desktop's: a few hundred executables with a
//! long tail, ephemeral local ports, thousands of remote addresses and domains, bytes
//! spread over orders of magnitude. Deterministic for a given seed.
use picosnitch_store::{ConnectionRecord, ExeRecord, Store, StoreError};
use std::time::Instant;

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        // xorshift64*: fast, and good enough to spread synthetic rows.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An index in 0..n where small indexes are much more likely (popular programs,
    /// popular sites), like real traffic.
    fn skewed(&mut self, n: usize) -> usize {
        ((self.unit().powi(3) * n as f64) as usize).min(n - 1)
    }
}

pub struct Shape {
    pub rows: u64,
    pub days: u64,
    /// The newest row's time; rows spread evenly over the `days` before it.
    pub end: i64,
    pub seed: u64,
}

struct Pools {
    exes: Vec<ExeRecord>,
    parents: Vec<ExeRecord>,
    grandparents: Vec<ExeRecord>,
    raddrs: Vec<String>,
    domains: Vec<String>,
    laddrs: Vec<String>,
}

fn exe_record(dir: &str, name: &str, variant: usize, rng: &mut Rng) -> ExeRecord {
    let sha = match rng.below(200) {
        0 => "!unreadable".to_string(),
        1 => "!replaced".to_string(),
        _ => format!("{:016x}{:016x}{:016x}{:016x}", rng.next(), rng.next(), rng.next(), rng.next()),
    };
    ExeRecord { exe: format!("{dir}/{name}"), name: name.chars().take(15).collect(), cmdline: format!("{dir}/{name} --profile {variant}"), sha256: sha }
}

fn pools(rng: &mut Rng) -> Pools {
    let mut exes = Vec::new();
    for i in 0..400 {
        let dir = ["/usr/bin", "/usr/lib/firefox", "/opt/app", "/usr/libexec", "/home/user/.local/bin"][i % 5];
        let name = format!("prog{i:03}");
        // A few command lines and binaries per program, as with updates and profiles.
        for v in 0..(1 + rng.below(3) as usize) {
            exes.push(exe_record(dir, &name, v, rng));
        }
    }
    let parents = (0..60).map(|i| exe_record("/usr/bin", &format!("parent{i:02}"), 0, rng)).collect();
    let mut grandparents: Vec<ExeRecord> = (0..20).map(|i| exe_record("/usr/lib/systemd", &format!("gp{i:02}"), 0, rng)).collect();
    grandparents.push(ExeRecord::default());
    let raddrs = (0..20_000)
        .map(|i| {
            if i % 5 == 0 {
                format!("2606:4700:{:x}::{:x}", rng.below(65536), rng.below(65536))
            } else {
                format!("{}.{}.{}.{}", 1 + rng.below(223), rng.below(256), rng.below(256), 1 + rng.below(254))
            }
        })
        .collect();
    let mut domains: Vec<String> = (0..5_000).map(|i| format!("host{}.site{}.example", rng.below(50), i)).collect();
    domains.insert(0, String::new());
    let laddrs = ["192.168.1.42", "10.0.0.2", "127.0.0.1", "::1", "fe80::1", "172.17.0.1", "100.64.0.7", "2001:db8::42"].map(String::from).to_vec();
    Pools { exes, parents, grandparents, raddrs, domains, laddrs }
}

const SERVICE_PORTS: [i64; 12] = [443, 80, 53, 22, 993, 587, 123, 5353, 8080, 22000, 3478, 1900];

fn row(contime: i64, p: &Pools, rng: &mut Rng) -> ConnectionRecord {
    let tcp = rng.below(5) != 0;
    let lport = if rng.below(10) < 7 { 32_768 + rng.below(28_232) as i64 } else { SERVICE_PORTS[rng.skewed(SERVICE_PORTS.len())] };
    let magnitude = 10f64.powi(1 + rng.below(6) as i32);
    ConnectionRecord {
        contime,
        send: (rng.unit() * magnitude) as i64,
        recv: (rng.unit() * magnitude * 8.0) as i64,
        events: i64::from(rng.below(4) != 0),
        exe: p.exes[rng.skewed(p.exes.len())].clone(),
        pexe: p.parents[rng.skewed(p.parents.len())].clone(),
        gpexe: p.grandparents[rng.skewed(p.grandparents.len())].clone(),
        uid: [1000, 0, 1001, 102, 65534][rng.skewed(5)],
        family: if rng.below(5) == 0 { 10 } else { 2 },
        protocol: if tcp { 6 } else { 17 },
        lport,
        rport: SERVICE_PORTS[rng.skewed(SERVICE_PORTS.len())],
        laddr: p.laddrs[rng.skewed(p.laddrs.len())].clone(),
        raddr: p.raddrs[rng.skewed(p.raddrs.len())].clone(),
        domain: p.domains[rng.skewed(p.domains.len())].clone(),
        netns: 4_026_531_840 + rng.skewed(4) as i64,
    }
}

/// Builds the history through [`Store::insert_batch`], the writer's own path, one hour
/// per batch; returns the seconds it took.
pub fn generate(store: &mut Store, shape: &Shape) -> Result<f64, StoreError> {
    let started = Instant::now();
    let mut rng = Rng::new(shape.seed);
    let p = pools(&mut rng);
    let span = i64::try_from(shape.days * 86_400).unwrap_or(i64::MAX);
    let start = shape.end - span;
    let hours = (span / 3_600).max(1);
    let per_hour = shape.rows / hours as u64;
    let mut extra = shape.rows % hours as u64;
    let mut batch = Vec::with_capacity(per_hour as usize + 1);
    for h in 0..hours {
        let n = per_hour + u64::from(extra > 0);
        extra = extra.saturating_sub(1);
        batch.clear();
        for i in 0..n {
            // Rows of one write period share its start time, as the writer's do.
            let t = start + h * 3_600 + (i as i64 * 3_600 / n as i64) / 10 * 10;
            batch.push(row(t, &p, &mut rng));
        }
        store.insert_batch(&batch)?;
        if h % 24 == 23 {
            eprintln!("  day {:>3}/{}: {:.0} s", (h + 1) / 24, hours / 24, started.elapsed().as_secs_f64());
        }
    }
    Ok(started.elapsed().as_secs_f64())
}

/// What both history benchmarks (the TUI's and the web UI's) take: the history's size
/// and place, and how often each measurement is repeated.
pub struct HistoryArgs {
    pub rows: u64,
    pub days: u64,
    pub db: std::path::PathBuf,
    pub repeat: usize,
    pub regenerate: bool,
}

impl HistoryArgs {
    pub fn new(db: &str) -> HistoryArgs {
        HistoryArgs { rows: 10_000_000, days: 30, db: db.into(), repeat: 10, regenerate: false }
    }

    /// Takes `flag` if it is one of these, asking `value` for its value; false for any
    /// other flag.
    pub fn take(&mut self, flag: &str, value: &mut dyn FnMut() -> Result<String, String>) -> Result<bool, String> {
        match flag {
            "--rows" => self.rows = value()?.parse().map_err(|e| format!("--rows: {e}"))?,
            "--days" => self.days = value()?.parse().map_err(|e| format!("--days: {e}"))?,
            "--db" => self.db = value()?.into(),
            "--repeat" => self.repeat = value()?.parse().map_err(|e| format!("--repeat: {e}"))?,
            "--regenerate" => self.regenerate = true,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The benchmark's history: generated (`rows` over `days` ending now) when it does
    /// not exist or `--regenerate` asks for a new one, else reused as it is.
    pub fn prepare(&self) {
        if !self.regenerate && self.db.exists() {
            return;
        }
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.db.display()));
        }
        eprintln!("generating {} rows over {} days into {}", self.rows, self.days, self.db.display());
        let (mut store, _) = Store::open(&self.db).expect("open for writing");
        let shape = Shape { rows: self.rows, days: self.days, end: picosnitch_store::unix_now(), seed: 42 };
        let secs = generate(&mut store, &shape).expect("generate");
        eprintln!("generated in {secs:.0} s ({:.0} rows/s)", self.rows as f64 / secs);
    }
}

/// The `p` quantile (0 to 1) of sorted timings.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((p * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1)]
}

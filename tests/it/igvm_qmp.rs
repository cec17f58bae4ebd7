//! `--qmp SOCKET --igvm FILE` on an SEV-SNP guest that QEMU launches from
//! an IGVM file, against a monitor that answers as QEMU 10.2 with IGVM
//! support does (the QOM replies recorded from the QEMU that
//! scripts/setup-qemu-igvm.sh builds: `qom-get /machine igvm-cfg` gives the
//! object's path, `qom-get /objects/ID file` the file's). The expected
//! digest is the igvm crate's of the vectors' file (../shared/igvm-vectors)
//! in QEMU's order, never the tool's own output; the
//! host's copy is the file the monitor names, read from this machine.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// What the simulated QEMU says.
#[derive(Clone)]
struct Host {
    policy: u64,
    vcpus: usize,
    /// The IGVM file QOM names ("" for a machine without one).
    igvm: String,
}

fn serve(s: UnixStream, h: &Host) {
    let mut w = s.try_clone().unwrap();
    let _ = w.write_all(b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 2, \"minor\": 2, \"major\": 10}, \"package\": \"\"}, \"capabilities\": [\"oob\"]}}\r\n");
    for line in BufReader::new(s).lines() {
        let Ok(line) = line else { return };
        let m: Value = serde_json::from_str(&line).unwrap();
        let args = &m["arguments"];
        let mut reply = match m["execute"].as_str().unwrap_or("") {
            "qmp_capabilities" => json!({"return": {}}),
            "query-sev" => json!({"return": {
                "enabled": true, "api-major": 1, "api-minor": 55, "build-id": 24,
                "state": "launch-update", "sev-type": "sev-snp", "snp-policy": h.policy}}),
            "query-cpus-fast" => json!({"return": (0..h.vcpus)
                .map(|i| json!({"cpu-index": i, "qom-path": format!("/machine/unattached/device[{i}]"), "thread-id": 1000 + i, "props": {"core-id": i, "thread-id": 0, "socket-id": 0}, "target": "x86_64"}))
                .collect::<Vec<_>>()}),
            "qom-get" if args["path"] == "/machine" && args["property"] == "igvm-cfg" => {
                if h.igvm.is_empty() {
                    json!({"return": ""})
                } else {
                    json!({"return": "/objects/igvm0"})
                }
            }
            "qom-get" if args["path"] == "/objects/igvm0" && args["property"] == "file" => {
                json!({"return": h.igvm})
            }
            "qom-list" => json!({"return": [{"name": "type", "type": "string"}]}),
            other => json!({"error": {
                "class": "CommandNotFound", "desc": format!("The command {other} has not been found")}}),
        };
        if let Some(id) = m.get("id") {
            reply["id"] = id.clone();
        }
        let _ = w.write_all(format!("{reply}\r\n").as_bytes());
    }
}

fn monitor(sock: &Path, h: Host) {
    let listener = UnixListener::bind(sock).unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(s) = s else { return };
            serve(s, &h);
        }
    });
}

/// QEMU's launch digest of `seedN` (the igvm crate's measurement of its
/// directives in QEMU's order) and its policy (seedN.json).
fn expected(dir: &Path, seed: &str) -> (String, u64) {
    let bytes = std::fs::read(dir.join(format!("{seed}.igvm"))).unwrap();
    let v: Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{seed}.json"))).unwrap()).unwrap();
    let p = v[0]["policy"].as_str().unwrap().trim_start_matches("0x");
    (
        crate::igvm_build::qemu_digest_of(&bytes),
        u64::from_str_radix(p, 16).unwrap(),
    )
}

struct Run {
    tmp: tempfile::TempDir,
    vectors: PathBuf,
    n: std::cell::Cell<u32>,
}

impl Run {
    /// Starts a monitor for `h` and runs the tool with `--igvm owner` (or
    /// `extra` alone when `owner` is empty).
    fn run(&self, h: Host, owner: &str, extra: &[&str]) -> (i32, String, String) {
        self.n.set(self.n.get() + 1);
        let sock = self.tmp.path().join(format!("qmp{}.sock", self.n.get()));
        monitor(&sock, h);
        let mut a: Vec<String> = ["--qmp", sock.to_str().unwrap(), "--insecure"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if !owner.is_empty() {
            a.extend(["--igvm".into(), self.file(owner)]);
        }
        a.extend(extra.iter().map(|s| s.to_string()));
        common::run(&a)
    }

    /// The vector file `name` copied into the test's directory: the host's copy.
    fn host_copy(&self, name: &str) -> String {
        let to = self.tmp.path().join(format!("host-{name}"));
        std::fs::copy(self.vectors.join(name), &to).unwrap();
        to.display().to_string()
    }

    fn file(&self, name: &str) -> String {
        self.vectors.join(name).display().to_string()
    }
}

#[test]
fn an_igvm_guest_on_qemus_monitor_is_judged_before_it_runs() {
    let Some(vectors) = common::igvm_vectors_dir("an_igvm_guest_on_qemus_monitor") else {
        return;
    };
    let r = Run {
        tmp: tempfile::tempdir().unwrap(),
        vectors,
        n: std::cell::Cell::new(0),
    };
    let (ld3, policy3) = expected(&r.vectors, "seed4");
    let same = Host {
        policy: policy3,
        vcpus: 1,
        igvm: r.host_copy("seed4.igvm"),
    };
    // The host loads the owner's file: the expected digest is the vectors'.
    let (code, out, err) = r.run(same.clone(), "seed4.igvm", &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("Expected launch digest: {ld3}")),
        "{out}"
    );

    // Another file loaded: refused before the guest runs, both digests named.
    let (ld4, _) = expected(&r.vectors, "seed2");
    let other = Host {
        igvm: r.host_copy("seed2.igvm"),
        ..same.clone()
    };
    let (code, out, err) = r.run(other, "seed4.igvm", &[]);
    assert_eq!(code, 1, "{out}{err}");
    let all = format!("{out}{err}");
    assert!(
        all.contains("QEMU loaded another IGVM file") && all.contains(&ld4) && all.contains(&ld3),
        "{all}"
    );

    // More vCPUs than the file has VMSAs: a host configuration error.
    let (code, out, err) = r.run(
        Host {
            vcpus: 2,
            ..same.clone()
        },
        "seed4.igvm",
        &[],
    );
    assert_eq!(code, 4, "{out}{err}");
    assert!(err.contains("-smp 1"), "{err}");

    // Another policy than the file's.
    let (code, _, err) = r.run(
        Host {
            policy: policy3 ^ (1 << 16),
            ..same.clone()
        },
        "seed4.igvm",
        &[],
    );
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("carries"), "{err}");

    // seed3's ID block was made for its pages in file order, which QEMU's
    // launch does not give: SNP_LAUNCH_FINISH would refuse it.
    let (_, policy_id) = expected(&r.vectors, "seed3");
    let (code, out, err) = r.run(
        Host {
            policy: policy_id,
            vcpus: 1,
            igvm: r.host_copy("seed3.igvm"),
        },
        "seed3.igvm",
        &[],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("ID block does not fit"), "{err}");

    // The owner expects firmware, QEMU loads an IGVM file; and the reverse.
    let ovmf = "/usr/share/ovmf/OVMF.fd";
    let (code, _, err) = r.run(
        same.clone(),
        "",
        &[
            "--generation",
            "sev-snp",
            "--firmware",
            ovmf,
            "--num-cpus",
            "1",
        ],
    );
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("--igvm FILE"), "{err}");
    let (code, _, err) = r.run(
        Host {
            igvm: String::new(),
            ..same
        },
        "seed4.igvm",
        &[],
    );
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("QEMU loads no IGVM file"), "{err}");
}

//! The IGVM file of a QEMU machine, asked of QOM (src/source/qmp_igvm.rs), on
//! replies recorded from real QEMUs: 10.2.2 built with IGVM support
//! (scripts/setup-qemu-igvm.sh), Debian's 10.0.2 (bookworm-backports) and
//! 7.2 (Debian 12), which have none. And the host's copy of that file, read
//! locally with its size limit.

use serde_json::{json, Value};

use sev_validate::error::Error;
use sev_validate::source::qmp::{QmpError, Reply};
use sev_validate::source::qmp_igvm::{
    igvm_from_qom, read_host_igvm, HostAccess, QomIgvm, MAX_IGVM_FILE,
};

/// One recorded exchange: the command and arguments the client must send,
/// and QEMU's answer as it came on the socket.
struct Exchange {
    command: &'static str,
    arguments: Value,
    answer: String,
}

fn ex(command: &'static str, arguments: Value, answer: impl Into<String>) -> Exchange {
    Exchange {
        command,
        arguments,
        answer: answer.into(),
    }
}

/// Replays the exchanges in order; a command other than the next recorded
/// one fails the test.
fn replay(script: Vec<Exchange>) -> Result<QomIgvm, Error> {
    let mut next = script.into_iter();
    let result = igvm_from_qom(|command, arguments| {
        let e = next
            .next()
            .unwrap_or_else(|| panic!("unexpected {command} {arguments}"));
        assert_eq!((command, &arguments), (e.command, &e.arguments));
        let v: Value = serde_json::from_str(&e.answer).unwrap();
        let reply: Reply = match v.get("error") {
            Some(err) => Err(serde_json::from_value::<QmpError>(err.clone()).unwrap()),
            None => Ok(v["return"].clone()),
        };
        Ok(reply)
    });
    assert!(
        next.next().is_none(),
        "not every recorded command was asked"
    );
    result
}

fn machine_link() -> Value {
    json!({"path": "/machine", "property": "igvm-cfg"})
}

fn file_of(object: &str) -> Value {
    json!({"path": object, "property": "file"})
}

fn objects() -> Value {
    json!({"path": "/objects"})
}

/// QEMU 10.2.2 with IGVM, `-machine q35,igvm-cfg=igvm0 -object igvm-cfg,id=igvm0,file=...`.
#[test]
fn a_machine_started_with_an_igvm_file() {
    let got = replay(vec![
        ex("qom-get", machine_link(), r#"{"return": "/objects/igvm0"}"#),
        ex(
            "qom-get",
            file_of("/objects/igvm0"),
            r#"{"return": "/var/lib/virt-qemu-sev-validate/qemu-igvm/share/native-hlt.igvm"}"#,
        ),
    ])
    .unwrap();
    assert_eq!(
        got,
        QomIgvm::File {
            object: "/objects/igvm0".into(),
            path: "/var/lib/virt-qemu-sev-validate/qemu-igvm/share/native-hlt.igvm".into(),
        }
    );
}

/// QEMU 10.2.2 with IGVM, `-machine q35` alone: the link is empty.
#[test]
fn a_machine_started_without_one() {
    let got = replay(vec![
        ex("qom-get", machine_link(), r#"{"return": ""}"#),
        ex(
            "qom-list",
            objects(),
            r#"{"return": [{"name": "type", "type": "string"}, {"name": "pc.ram", "type": "child<memory-backend-ram>"}]}"#,
        ),
    ])
    .unwrap();
    assert_eq!(
        got,
        QomIgvm::NotConfigured {
            unused_objects: vec![]
        }
    );
}

/// QEMU 10.2.2, `-machine q35 -object igvm-cfg,id=igvm0,file=...` without
/// `igvm-cfg=igvm0` on the machine: the object exists, the machine does not
/// load it.
#[test]
fn an_igvm_object_the_machine_does_not_use() {
    let got = replay(vec![
        ex("qom-get", machine_link(), r#"{"return": ""}"#),
        ex(
            "qom-list",
            objects(),
            r#"{"return": [{"name": "type", "type": "string"}, {"name": "igvm0", "type": "child<igvm-cfg>"}, {"name": "pc.ram", "type": "child<memory-backend-ram>"}]}"#,
        ),
    ])
    .unwrap();
    assert_eq!(
        got,
        QomIgvm::NotConfigured {
            unused_objects: vec!["/objects/igvm0".into()]
        }
    );
}

/// Debian's QEMU 10.0.2 and 7.2: no IGVM support, no such machine property.
#[test]
fn qemu_without_igvm_support() {
    for (machine, version) in [
        ("pc-q35-10.0-machine", "10.0"),
        ("pc-q35-7.2-machine", "7.2"),
    ] {
        let error = format!(
            r#"{{"error": {{"class": "GenericError", "desc": "Property '{machine}.igvm-cfg' not found"}}}}"#
        );
        let got = replay(vec![
            ex("qom-get", machine_link(), error),
            ex(
                "qom-list",
                objects(),
                r#"{"return": [{"name": "type", "type": "string"}, {"name": "pc.ram", "type": "child<memory-backend-ram>"}]}"#,
            ),
        ])
        .unwrap();
        assert_eq!(
            got,
            QomIgvm::NotSupported {
                qemu_says: format!("Property '{machine}.igvm-cfg' not found"),
                unused_objects: vec![],
            },
            "QEMU {version}"
        );
    }
}

/// A relative path is what QEMU answers for `file=rel.igvm`: the lookup
/// returns it as is; reading the host's copy refuses it.
#[test]
fn a_relative_path_is_returned_and_not_read() {
    let got = replay(vec![
        ex("qom-get", machine_link(), r#"{"return": "/objects/ig"}"#),
        ex(
            "qom-get",
            file_of("/objects/ig"),
            r#"{"return": "rel.igvm"}"#,
        ),
    ])
    .unwrap();
    assert_eq!(
        got,
        QomIgvm::File {
            object: "/objects/ig".into(),
            path: "rel.igvm".into()
        }
    );
    let err = read_host_igvm("rel.igvm", &HostAccess::Local).unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("relative path 'rel.igvm'") && m.contains("absolute path")),
        "{err:?}"
    );
}

/// Answers no QEMU gives, and refusals: each a clear error, never a guess.
#[test]
fn bad_answers_are_errors() {
    let link = |answer: &str| replay(vec![ex("qom-get", machine_link(), answer)]);
    for answer in [
        r#"{"return": 7}"#,
        r#"{"return": "igvm0"}"#,
        r#"{"return": null}"#,
    ] {
        let err = link(answer).unwrap_err();
        assert!(
            matches!(&err, Error::Protocol(m) if m.contains("not a QOM path")),
            "{answer}: {err:?}"
        );
    }
    // A huge answer is quoted cut short.
    let huge = format!(r#"{{"return": ["{}"]}}"#, "x".repeat(100_000));
    let err = link(&huge).unwrap_err();
    assert!(
        matches!(&err, Error::Protocol(m) if m.len() < 400 && m.contains("xxx...")),
        "{err:?}"
    );
    // Another error than a missing property: QEMU's words are passed on.
    let err =
        link(r#"{"error": {"class": "DeviceNotFound", "desc": "Device '/machine' not found"}}"#)
            .unwrap_err();
    assert!(
        matches!(&err, Error::HostCall(m) if m.contains("Device '/machine' not found") && m.contains("DeviceNotFound")),
        "{err:?}"
    );
    // The linked object's file: QEMU 10.2.2's error for an object that is not there.
    let err = replay(vec![
        ex("qom-get", machine_link(), r#"{"return": "/objects/nosuch"}"#),
        ex(
            "qom-get",
            file_of("/objects/nosuch"),
            r#"{"error": {"class": "DeviceNotFound", "desc": "Device '/objects/nosuch' not found"}}"#,
        ),
    ])
    .unwrap_err();
    assert!(
        matches!(&err, Error::HostCall(m) if m.contains("qom-get /objects/nosuch file")),
        "{err:?}"
    );
    for answer in [r#"{"return": ""}"#, r#"{"return": 1}"#] {
        let err = replay(vec![
            ex("qom-get", machine_link(), r#"{"return": "/objects/igvm0"}"#),
            ex("qom-get", file_of("/objects/igvm0"), answer),
        ])
        .unwrap_err();
        assert!(
            matches!(&err, Error::Protocol(m) if m.contains("not the path of an IGVM file")),
            "{answer}: {err:?}"
        );
    }
    // qom-list that is not a list.
    let err = replay(vec![
        ex("qom-get", machine_link(), r#"{"return": ""}"#),
        ex("qom-list", objects(), r#"{"return": {}}"#),
    ])
    .unwrap_err();
    assert!(
        matches!(&err, Error::Protocol(m) if m.contains("did not return a list")),
        "{err:?}"
    );
}

/// The host's copy, read locally: byte for byte, and refused over the limit
/// without being read (a sparse file of the limit plus one byte).
#[test]
fn the_host_copy_read_locally() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("guest firmware.igvm");
    let bytes: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(&path, &bytes).unwrap();
    let p = path.to_str().unwrap();
    assert_eq!(read_host_igvm(p, &HostAccess::Local).unwrap(), bytes);

    let at_limit = dir.path().join("at-limit.igvm");
    let f = std::fs::File::create(&at_limit).unwrap();
    f.set_len(MAX_IGVM_FILE).unwrap();
    assert_eq!(
        read_host_igvm(at_limit.to_str().unwrap(), &HostAccess::Local)
            .unwrap()
            .len() as u64,
        MAX_IGVM_FILE
    );
    f.set_len(MAX_IGVM_FILE + 1).unwrap();
    let err = read_host_igvm(at_limit.to_str().unwrap(), &HostAccess::Local).unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains(&(MAX_IGVM_FILE + 1).to_string()) && m.contains(&MAX_IGVM_FILE.to_string())),
        "{err:?}"
    );

    let missing = dir.path().join("none.igvm");
    let err = read_host_igvm(missing.to_str().unwrap(), &HostAccess::Local).unwrap_err();
    assert!(
        matches!(&err, Error::Usage(m) if m.contains("no such file")),
        "{err:?}"
    );
    let err = read_host_igvm(dir.path().to_str().unwrap(), &HostAccess::Local).unwrap_err();
    assert!(
        matches!(&err, Error::Usage(m) if m.contains("directory")),
        "{err:?}"
    );
}

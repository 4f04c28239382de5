//! ONNX import errors: unsupported ops, malformed files and wrong input shapes give clear
//! errors (never panics) naming what is wrong.

use prost::Message;
use veil_ml::onnx::proto::{
    tensor_proto::DataType, tensor_shape_proto, type_proto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use veil_ml::onnx::{ImportConfig, OnnxError, OnnxImport};
use veil_ml::Matrix;

fn value(name: &str, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| tensor_shape_proto::Dimension {
                            value: Some(if d < 0 {
                                tensor_shape_proto::dimension::Value::DimParam("N".into())
                            } else {
                                tensor_shape_proto::dimension::Value::DimValue(d)
                            }),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// `x [N, 3] -> Gemm(w [3, 2]) -> <op> -> y`.
fn model(op: &str) -> Vec<u8> {
    let w = TensorProto {
        name: Some("w".into()),
        dims: vec![3, 2],
        data_type: Some(DataType::Float as i32),
        float_data: vec![1.0, -1.0, 0.5, 0.25, -0.5, 2.0],
        ..Default::default()
    };
    let m = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(GraphProto {
            name: Some("g".into()),
            node: vec![
                node("Gemm", "fc", &["x", "w"], &["h"]),
                node(op, "act", &["h"], &["y"]),
            ],
            initializer: vec![w],
            input: vec![value("x", &[-1, 3])],
            output: vec![value("y", &[-1, 2])],
            ..Default::default()
        }),
        ..Default::default()
    };
    m.encode_to_vec()
}

fn rows(n: usize, d: usize) -> Matrix {
    Matrix::new(
        n,
        d,
        (0..n * d)
            .map(|i| ((i * 7) % 11) as f64 / 5.0 - 1.0)
            .collect(),
    )
    .expect("matrix")
}

#[test]
fn a_supported_model_built_in_rust_compiles_and_runs() {
    let m = OnnxImport::from_bytes(&model("Relu")).expect("imports");
    let q = m
        .compile(&rows(20, 3), &ImportConfig::default())
        .expect("compiles");
    let x = rows(5, 3);
    let f = m.predict_float(&x).expect("float");
    let c = q.predict_clear(&x).expect("clear");
    for (a, b) in f[0].data.iter().zip(&c[0].data) {
        assert!((a - b).abs() < 0.1, "float {a} vs quantized {b}");
    }
}

#[test]
fn unsupported_op_names_the_op_the_node_and_the_alternatives() {
    let e = OnnxImport::from_bytes(&model("Erf")).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(&e, OnnxError::Unsupported { op, node, .. } if op == "Erf" && node == "act"),
        "{e:?}"
    );
    assert!(
        msg.contains("Erf") && msg.contains("act") && msg.contains("Supported ops"),
        "{msg}"
    );
}

/// ZipMap (a classifier's probabilities as a list of maps) runs on the client after
/// decryption and keeps the probabilities as a tensor.
#[test]
fn zipmap_runs_on_the_client() {
    let mut m = ModelProto::decode(model("Relu").as_slice()).unwrap();
    let g = m.graph.as_mut().unwrap();
    g.node[1].op_type = Some("ZipMap".into());
    g.node[1].domain = Some("ai.onnx.ml".into());
    let imp = OnnxImport::from_bytes(&m.encode_to_vec()).expect("imports");
    let x = rows(20, 3);
    let q = imp.compile(&x, &ImportConfig::default()).expect("compiles");
    assert_eq!(q.client_ops(), vec!["ZipMap"]);
    let (float, clear) = (imp.predict_float(&x).unwrap(), q.predict_clear(&x).unwrap());
    assert_eq!(float[0].shape, vec![20, 2]);
    for (a, b) in float[0].data.iter().zip(&clear[0].data) {
        assert!((a - b).abs() < 0.1, "float {a} vs quantized {b}");
    }
}

#[test]
fn garbage_bytes_are_not_a_model() {
    for bytes in [&b""[..], &b"\xff\xff\xff\xff not protobuf"[..]] {
        let e = OnnxImport::from_bytes(bytes).unwrap_err();
        assert!(matches!(e, OnnxError::Decode(_)), "{e:?}");
        assert!(e.to_string().contains("not a valid ONNX model"), "{e}");
    }
}

#[test]
fn truncated_file_is_rejected() {
    let full = model("Relu");
    let e = OnnxImport::from_bytes(&full[..full.len() / 2]).unwrap_err();
    assert!(
        matches!(e, OnnxError::Decode(_) | OnnxError::Malformed(_)),
        "{e:?}"
    );
}

#[test]
fn model_without_graph_or_with_dangling_names_is_malformed() {
    let e = OnnxImport::from_bytes(
        &ModelProto {
            ir_version: Some(8),
            ..Default::default()
        }
        .encode_to_vec(),
    )
    .unwrap_err();
    assert!(
        matches!(e, OnnxError::Malformed(ref m) if m.contains("no graph")),
        "{e:?}"
    );
    let mut m = ModelProto::decode(model("Relu").as_slice()).unwrap();
    m.graph.as_mut().unwrap().node[1].input[0] = "nowhere".into();
    let e = OnnxImport::from_bytes(&m.encode_to_vec()).unwrap_err();
    assert!(
        matches!(e, OnnxError::Malformed(ref s) if s.contains("nowhere") && s.contains("act")),
        "{e:?}"
    );
}

#[test]
fn tensor_data_that_does_not_match_its_shape_is_malformed() {
    let mut m = ModelProto::decode(model("Relu").as_slice()).unwrap();
    m.graph.as_mut().unwrap().initializer[0].float_data.pop();
    let e = OnnxImport::from_bytes(&m.encode_to_vec()).unwrap_err();
    assert!(
        matches!(e, OnnxError::Malformed(ref s) if s.contains("initializer `w`")),
        "{e:?}"
    );
}

#[test]
fn wrong_input_width_is_a_shape_error() {
    let m = OnnxImport::from_bytes(&model("Relu")).expect("imports");
    let e = m
        .compile(&rows(10, 4), &ImportConfig::default())
        .unwrap_err();
    assert!(
        matches!(e, OnnxError::Shape(ref s) if s.contains("[3]") && s.contains("4 values")),
        "{e:?}"
    );
    let q = m
        .compile(&rows(10, 3), &ImportConfig::default())
        .expect("compiles");
    let e = q.predict_clear(&rows(2, 5)).unwrap_err();
    assert!(matches!(e, OnnxError::Shape(_)), "{e:?}");
    let e = m.predict_float(&rows(2, 2)).unwrap_err();
    assert!(matches!(e, OnnxError::Shape(_)), "{e:?}");
}

#[test]
fn symbolic_feature_dimension_is_refused() {
    let mut m = ModelProto::decode(model("Relu").as_slice()).unwrap();
    m.graph.as_mut().unwrap().input[0] = value("x", &[-1, -1]);
    let e = OnnxImport::from_bytes(&m.encode_to_vec()).unwrap_err();
    assert!(
        matches!(e, OnnxError::Shape(ref s) if s.contains("symbolic")),
        "{e:?}"
    );
}

#[test]
fn client_side_op_in_the_middle_is_refused() {
    let mut m = ModelProto::decode(model("Softmax").as_slice()).unwrap();
    let g = m.graph.as_mut().unwrap();
    g.node.push(node("Gemm", "fc2", &["y", "w2"], &["z"]));
    g.initializer.push(TensorProto {
        name: Some("w2".into()),
        dims: vec![2, 1],
        data_type: Some(DataType::Float as i32),
        float_data: vec![1.0, 2.0],
        ..Default::default()
    });
    g.output = vec![value("z", &[-1, 1])];
    let im = OnnxImport::from_bytes(&m.encode_to_vec()).expect("parses");
    let e = im
        .compile(&rows(10, 3), &ImportConfig::default())
        .unwrap_err();
    assert!(
        matches!(e, OnnxError::Unsupported { ref node, .. } if node == "fc2"),
        "{e:?}"
    );
}

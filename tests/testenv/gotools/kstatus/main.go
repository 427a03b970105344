// kstatus prints Flux's verdict (sigs.k8s.io/cli-utils/pkg/kstatus) for one live object as JSON.
//
//	kstatus -kubeconfig K -group G -version V -resource PLURAL -namespace NS NAME
//	kstatus - < object.json    (an object captured earlier, e.g. a state that lasts only a second)
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "path to kubeconfig")
	group := flag.String("group", "milvusops.dev", "API group")
	version := flag.String("version", "v1alpha1", "API version")
	resource := flag.String("resource", "milvuscollections", "plural resource name")
	namespace := flag.String("namespace", "default", "namespace")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: kstatus [flags] NAME")
		os.Exit(2)
	}
	var object *unstructured.Unstructured
	if flag.Arg(0) == "-" {
		data, err := io.ReadAll(os.Stdin)
		if err != nil {
			fail(err)
		}
		object = &unstructured.Unstructured{}
		if err := object.UnmarshalJSON(data); err != nil {
			fail(err)
		}
	} else {
		object = get(*kubeconfig, schema.GroupVersionResource{Group: *group, Version: *version, Resource: *resource},
			*namespace, flag.Arg(0))
	}
	result, err := status.Compute(object)
	if err != nil {
		fail(err)
	}
	out, _ := json.Marshal(map[string]string{"status": result.Status.String(), "message": result.Message})
	fmt.Println(string(out))
}

func get(kubeconfig string, gvr schema.GroupVersionResource, namespace, name string) *unstructured.Unstructured {
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		fail(err)
	}
	client, err := dynamic.NewForConfig(config)
	if err != nil {
		fail(err)
	}
	object, err := client.Resource(gvr).Namespace(namespace).Get(context.Background(), name, v1.GetOptions{})
	if err != nil {
		fail(err)
	}
	return object
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

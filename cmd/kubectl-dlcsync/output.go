package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// objectOutput is kubectl's -o for a verb whose result is objects: json, yaml, name, jsonpath and
// the templates, printed by cli-runtime's printers as kubectl prints them. Without -o the verb
// prints its own text.
type objectOutput struct {
	flags *genericclioptions.PrintFlags
}

// addObjectOutput adds -o and the printers' flags (--template, --show-managed-fields, ...) to cmd;
// what names what the objects are, for the usage ("the JobQuery and its snapshots").
func addObjectOutput(cmd *cobra.Command, what string, extra ...string) *objectOutput {
	o := &objectOutput{flags: genericclioptions.NewPrintFlags("").WithTypeSetter(scheme)}
	o.flags.AddFlags(cmd)
	formats := append(extra, o.flags.AllowedFormats()...)
	cmd.Flag("output").Usage = "Print " + what + " in this format instead of text: " + strings.Join(formats, ", ")
	return o
}

// printer is the printer of -o, nil when -o asks for the verb's own text (none, or one of the
// verb's own formats such as wide). Verbs call it before they write anything, so that a
// misspelt -o fails before a patch is sent.
func (o *objectOutput) printer(own ...string) (printers.ResourcePrinter, error) {
	format := *o.flags.OutputFormat
	if format == "" {
		return nil, nil
	}
	for _, f := range own {
		if format == f {
			return nil, nil
		}
	}
	p, err := o.flags.ToPrinter()
	if err != nil {
		return nil, fmt.Errorf("-o %s: %w", format, err)
	}
	return p, nil
}

// printObject prints one typed object with its apiVersion and kind.
func printObject(p printers.ResourcePrinter, obj runtime.Object, w io.Writer) error {
	if err := setKind(obj); err != nil {
		return err
	}
	return p.PrintObj(obj, w)
}

// printList prints objects as kubectl prints several, one v1 List. Not a typed list, which
// the name and template printers do not accept, and which could not mix a JobQuery with its
// snapshots.
func printList(p printers.ResourcePrinter, objs []runtime.Object, w io.Writer) error {
	list := &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": "v1", "kind": "List"}}
	for _, obj := range objs {
		if err := setKind(obj); err != nil {
			return err
		}
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return fmt.Errorf("converting %s for printing: %w", obj.GetObjectKind().GroupVersionKind().Kind, err)
		}
		list.Items = append(list.Items, unstructured.Unstructured{Object: m})
	}
	return p.PrintObj(list, w)
}

// setKind writes apiVersion and kind into a typed object, which the client leaves empty.
func setKind(obj runtime.Object) error {
	gvk, err := apiutil.GVKForObject(obj, scheme)
	if err != nil {
		return fmt.Errorf("printing %T: %w", obj, err)
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return nil
}
